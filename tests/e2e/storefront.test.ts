/**
 * The demo storefront in a real browser against the real service (embedded sandbox, SQLite ledger,
 * in-process queue): buy on the hosted checkout page, come back paid, refund through the async path
 * and watch it settle; a declined card stays on the checkout page and pays nothing.
 */
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mountDemo } from '../../src/demo/mount.js';
import { getJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { chromiumAvailable, launchChromium, watchPageErrors } from './browser.js';

const ARTIFACTS = fileURLToPath(new URL('../artifacts/e2e/', import.meta.url));
const SHOTS = {
  storefront: '01-storefront.png',
  checkoutVisa: '02-checkout-visa.png',
  successPaid: '03-success-paid.png',
  refundSucceeded: '04-refund-succeeded.png',
  checkoutDeclined: '05-checkout-declined.png',
  successUnpaid: '06-success-unpaid.png',
  problemNotFound: '07-problem-not-found.png',
  authNotice: '08-auth-notice.png',
  authDiscovered: '09-auth-discovered.png',
} as const;

const haveChromium = chromiumAvailable();

/** Intl separates code and number with a no-break space; compare text as a reader sees it. */
const visible = (text: string | null) => (text ?? '').replace(/\s+/g, ' ').trim();

async function shot(page: Page, name: keyof typeof SHOTS): Promise<void> {
  await page.screenshot({ path: `${ARTIFACTS}${SHOTS[name]}`, fullPage: true });
}

function expectShots(...names: (keyof typeof SHOTS)[]): void {
  for (const name of names) expect(statSync(`${ARTIFACTS}${SHOTS[name]}`).size).toBeGreaterThan(1000);
}

describe.skipIf(!haveChromium)('demo storefront in Chromium', () => {
  let svc: TestService;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let pageErrors: string[];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // Stale screenshots from an earlier run must not satisfy this run's assertions.
    for (const file of Object.values(SHOTS)) rmSync(`${ARTIFACTS}${file}`, { force: true });
    // One after the other, so a failed launch still leaves `svc` set for afterAll to stop.
    svc = await startTestService(
      'sqlite',
      {},
      { extraRoutes: (app, deps) => mountDemo(app, { authRequired: deps.config.auth.enabled }) },
    );
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await svc?.stop();
  });
  beforeEach(async () => {
    context = await browser.newContext({ locale: 'en-US', viewport: { width: 1000, height: 800 } });
    page = await context.newPage();
    pageErrors = watchPageErrors(page);
  });
  afterEach(async () => {
    await context?.close();
  });

  /** Storefront → Buy → the sandbox's hosted checkout page, filled in and submitted. */
  async function checkout(card: string, email: string, shotName: keyof typeof SHOTS): Promise<string> {
    await page.goto(`${svc.url}/demo/`);
    await page.locator('body[data-ready="true"]').waitFor();
    await page.getByRole('button', { name: 'Buy now' }).click();
    await page.waitForURL(/\/checkout\/cs_[^/]+$/);
    const sessionId = new URL(page.url()).pathname.split('/').pop()!;
    expect(visible(await page.locator('#total').textContent())).toContain('25.00');
    await page.getByLabel('Test card').selectOption(card);
    await page.getByLabel('Email').fill(email);
    await shot(page, shotName);
    await page.locator('#pay').click();
    return sessionId;
  }

  it('buys with a Visa test card, lands paid, refunds and watches the refund settle', async () => {
    await page.goto(`${svc.url}/demo`);
    await page.locator('body[data-ready="true"]').waitFor();
    expect(new URL(page.url()).pathname).toBe('/demo/');
    expect(await page.locator('#product-name').textContent()).toBe('Sandbox coffee mug');
    const price = page.locator('#price');
    expect(visible(await price.textContent())).toBe('SGD 25.00');
    expect(await price.getAttribute('data-amount')).toBe('2500');
    await shot(page, 'storefront');

    const sessionId = await checkout('pm_card_visa', 'buyer@example.com', 'checkoutVisa');
    await page.waitForURL((u) => u.pathname === '/demo/success.html');
    expect(new URL(page.url()).searchParams.get('session_id')).toBe(sessionId);

    await page.locator('#payment-status[data-status="paid"]').waitFor();
    expect(await page.locator('#payment-status').textContent()).toBe('paid');
    expect(await page.locator('h1').textContent()).toBe('Thank you for your order');
    expect(visible(await page.locator('#amount').textContent())).toBe('SGD 25.00');
    expect(await page.locator('#email').textContent()).toBe('buyer@example.com');
    expect(await page.locator('#session-id').textContent()).toBe(sessionId);
    const paymentIntentId = await page.locator('#payment-intent').textContent();
    expect(paymentIntentId).toMatch(/^pi_/);
    const session = await getJson(`${svc.url}/checkout-session?session_id=${sessionId}`);
    expect(session.json).toMatchObject({ payment_status: 'paid', payment_intent: paymentIntentId });
    const refundButton = page.getByRole('button', { name: 'Refund this payment' });
    // Enabled once the page has checked that no refund of this payment is under way.
    await page.locator('#refund:enabled').waitFor();
    await shot(page, 'successPaid');

    await refundButton.click();
    const status = page.locator('#refund-status');
    await page.locator('#refund-status[data-final="true"]').waitFor({ timeout: 20_000 });
    expect(await status.textContent()).toBe('succeeded');
    expect(await page.getByRole('status').filter({ has: status }).count()).toBe(1);
    // The accepted request always starts queued, so a settled refund shows at least one move.
    const history = await page.locator('#refund-history li').allTextContents();
    expect(history[0]).toBe('queued');
    expect(history.at(-1)).toBe('succeeded');
    expect(history.length).toBeGreaterThanOrEqual(2);
    expect(await refundButton.isDisabled()).toBe(true);
    expect(await page.locator('#error').isHidden()).toBe(true);
    await shot(page, 'refundSucceeded');

    const requestId = (await page.locator('#refund-request-id').textContent())!;
    const fromApi = await getJson(`${svc.url}/refund-status/${encodeURIComponent(requestId)}`);
    expect(fromApi.status).toBe(200);
    expect(fromApi.json).toMatchObject({
      status: 'succeeded',
      amount: 2500,
      payment_intent_id: paymentIntentId,
    });
    const ledger = await svc.deps.store.refunds.get(requestId);
    expect(ledger).toMatchObject({ status: 'succeeded', amount: 2500, paymentIntentId, mode: 'async' });
    expect(ledger?.stripeRefundId).toMatch(/^re_/);
    const stripeRefunds = await svc.deps.stripe.refunds.list({ payment_intent: paymentIntentId! });
    expect(stripeRefunds.data.map((r) => [r.status, r.amount])).toEqual([['succeeded', 2500]]);

    // A reload follows the same refund instead of offering to refund again.
    await page.reload();
    await page.locator('#refund-status[data-status="succeeded"]').waitFor();
    expect(await refundButton.isDisabled()).toBe(true);

    expectShots('storefront', 'checkoutVisa', 'successPaid', 'refundSucceeded');
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('shows the decline on the checkout page for pm_card_chargeDeclined and leaves the session unpaid', async () => {
    const sessionId = await checkout('pm_card_chargeDeclined', 'declined@example.com', 'checkoutDeclined');
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/declined/i);
    expect(new URL(page.url()).pathname).toBe(`/checkout/${sessionId}`);
    // The page is still there to try another card, with the customer's input kept.
    expect(await page.getByLabel('Email').inputValue()).toBe('declined@example.com');
    expect(await page.locator('#pay').isVisible()).toBe(true);
    await shot(page, 'checkoutDeclined');

    // Giving up on the hosted page brings the customer back to the store (cancel_url).
    await page.getByRole('link', { name: 'Cancel and return' }).click();
    await page.waitForURL((u) => u.pathname === '/demo/');
    await page.locator('body[data-ready="true"]').waitFor();

    const session = await getJson(`${svc.url}/checkout-session?session_id=${sessionId}`);
    expect(session.status).toBe(200);
    expect(session.json.payment_status).toBe('unpaid');
    expect(session.json.status).toBe('open');

    // Opening the success page by hand does not pretend otherwise, and offers no refund.
    await page.goto(`${svc.url}/demo/success.html?session_id=${sessionId}`);
    await page.locator('#payment-status[data-status="unpaid"]').waitFor();
    expect(await page.locator('h1').textContent()).toBe('Payment not completed');
    expect(await page.locator('#refund-section').isHidden()).toBe(true);
    await shot(page, 'successUnpaid');

    expectShots('checkoutDeclined', 'successUnpaid');
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('Back from the success page reaches the paid checkout page, which leads to the order again', async () => {
    const sessionId = await checkout('pm_card_visa', 'back@example.com', 'checkoutVisa');
    await page.waitForURL((u) => u.pathname === '/demo/success.html');
    await page.locator('#payment-status[data-status="paid"]').waitFor();

    await page.goBack();
    await page.waitForURL(/\/checkout\/cs_[^/]+$/);
    expect(visible(await page.locator('#status').textContent())).toMatch(/payment has already been made/);
    expect(await page.locator('#pay').count()).toBe(0);
    await page.getByRole('link', { name: 'Return to the shop' }).click();
    await page.waitForURL((u) => u.pathname === '/demo/success.html');
    expect(new URL(page.url()).searchParams.get('session_id')).toBe(sessionId);
    await page.locator('#payment-status[data-status="paid"]').waitFor();
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('Back from the success page after a declined card and then a payment reaches the paid checkout page', async () => {
    // The decline was the answer to a POST: Back to it was Chromium's "Confirm Form Resubmission" (ERR_CACHE_MISS).
    const sessionId = await checkout(
      'pm_card_chargeDeclined',
      'declined-then-paid@example.com',
      'checkoutDeclined',
    );
    await page.getByRole('alert').waitFor();
    expect(new URL(page.url()).pathname).toBe(`/checkout/${sessionId}`);
    await page.getByLabel('Test card').selectOption('pm_card_visa');
    await page.locator('#pay').click();
    await page.waitForURL((u) => u.pathname === '/demo/success.html');
    await page.locator('#payment-status[data-status="paid"]').waitFor();

    await page.goBack();
    expect(new URL(page.url()).pathname).toBe(`/checkout/${sessionId}`);
    expect(visible(await page.locator('#status').textContent())).toMatch(/payment has already been made/);
    expect(await page.locator('#error').count()).toBe(0);
    await page.getByRole('link', { name: 'Return to the shop' }).click();
    await page.waitForURL((u) => u.pathname === '/demo/success.html');
    await page.locator('#payment-status[data-status="paid"]').waitFor();
    const charges = await svc.deps.stripe.charges.list({
      payment_intent: (await page.locator('#payment-intent').textContent())!,
    });
    expect(charges.data.map((c) => c.status)).toEqual(['succeeded', 'failed']);
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('follows a refund that succeeded and then failed (pm_card_refundFail) to its failure', async () => {
    await checkout('pm_card_refundFail', 'refund-fails@example.com', 'checkoutVisa');
    await page.waitForURL((u) => u.pathname === '/demo/success.html');
    await page.locator('#refund:enabled').waitFor();
    await page.getByRole('button', { name: 'Refund this payment' }).click();
    // Stripe says succeeded first; the page used to stop there, telling the customer the money was back.
    await page.locator('#refund-status[data-status="failed"]').waitFor({ timeout: 20_000 });
    expect(visible(await page.locator('#refund-note').textContent())).toBe(
      '(Stripe could not refund it: expired_or_canceled_card)',
    );
    expect((await page.locator('#refund-history li').allTextContents()).slice(-2)).toEqual([
      'succeeded',
      'failed',
    ]);
    const requestId = (await page.locator('#refund-request-id').textContent())!;
    expect((await getJson(`${svc.url}/refund-status/${encodeURIComponent(requestId)}`)).json).toMatchObject({
      status: 'failed',
    });
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('checks a succeeded refund less and less often, and says when it last checked', async () => {
    // The page's own clock, paused once the refund has succeeded, so minutes pass at once and none is waited for.
    await page.clock.install();
    const checks: string[] = [];
    const favicons: string[] = [];
    page.on('request', (r) => {
      const { pathname } = new URL(r.url());
      if (pathname.startsWith('/refund-status/')) checks.push(pathname);
      if (pathname === '/favicon.ico') favicons.push(pathname);
    });
    await checkout('pm_card_visa', 'open-tab@example.com', 'checkoutVisa');
    await page.waitForURL((u) => u.pathname === '/demo/success.html');
    await page.locator('#refund:enabled').waitFor();
    await page.getByRole('button', { name: 'Refund this payment' }).click();
    await page.locator('#refund-status[data-status="succeeded"]').waitFor({ timeout: 20_000 });
    await page.clock.pauseAt((await page.evaluate(() => Date.now())) + 1000);

    const line = page.locator('#refund-checked');
    expect(await line.isVisible()).toBe(true);
    const idle = page.locator('#refund-checked[data-checking="false"]');
    const waits: number[] = [];
    let elapsed = 0;
    // Half an hour of the tab left open. At one check every 3 s that was 600 requests.
    while (elapsed < 30 * 60_000) {
      await idle.waitFor();
      const next = Number(await line.getAttribute('data-next-ms'));
      expect(next).toBeGreaterThan(0);
      const before = checks.length;
      const checkedBefore = await line.getAttribute('data-checked-at');
      await page.clock.runFor(next);
      // Checked again (a new time), and done checking.
      await page
        .locator(`#refund-checked[data-checking="false"]:not([data-checked-at="${checkedBefore}"])`)
        .waitFor();
      expect(checks.length - before).toBe(1);
      waits.push(next);
      elapsed += next;
    }
    expect(waits.length).toBeLessThan(60);
    // Never less often than every few minutes: a refund that fails later is still seen soon enough.
    expect(Math.max(...waits)).toBeLessThanOrEqual(5 * 60_000);
    expect(waits.at(-1)).toBeGreaterThanOrEqual(60_000);
    expect(waits.slice(1).every((w, i) => w >= waits[i]!)).toBe(true);
    // As the page's own locale and time zone write it.
    const said = await page.evaluate(
      (iso) => new Date(iso).toLocaleTimeString(),
      (await line.getAttribute('data-checked-at'))!,
    );
    expect(visible(await line.textContent())).toBe(
      `Last checked at ${said}; next check in ${Math.round(waits.at(-1)! / 60_000)} min.`,
    );
    expect(await page.locator('#refund-status').textContent()).toBe('succeeded');
    expect(favicons).toEqual([]);
    expect(pageErrors).toEqual([]);
  }, 60_000);

  /** Answers the next `count` requests of the page to `pattern` with `problem` (Retry-After: 1), as the service would. */
  async function answerWithProblem(
    pattern: string,
    count: number,
    problem: { status: number; title: string; detail: string; code: string },
  ): Promise<string[]> {
    const answered: string[] = [];
    await page.route(pattern, async (route) => {
      if (answered.length >= count) return route.fallback();
      answered.push(route.request().url());
      await route.fulfill({
        status: problem.status,
        headers: { 'content-type': 'application/problem+json', 'retry-after': '1' },
        body: JSON.stringify({ type: 'about:blank', ...problem, retry_after: 1 }),
      });
    });
    return answered;
  }

  /** Answers the next `count` status reads of the page with the rate limiter's 429. */
  const rateLimitStatusReads = (count: number) =>
    answerWithProblem('**/refund-status/**', count, {
      status: 429,
      title: 'Too Many Requests',
      detail: 'Rate limit reached; retry later.',
      code: 'rate_limited',
    });

  it('follows a refund through a 429 on a status read instead of stopping short of its outcome', async () => {
    await checkout('pm_card_visa', 'limited@example.com', 'checkoutVisa');
    await page.waitForURL((u) => u.pathname === '/demo/success.html');
    await page.locator('#refund:enabled').waitFor();
    const limited = await rateLimitStatusReads(1);
    await page.getByRole('button', { name: 'Refund this payment' }).click();
    await page.locator('#refund-status[data-status="succeeded"]').waitFor({ timeout: 20_000 });
    expect(limited).toHaveLength(1);
    // The 429 was waited out; nothing is left on the page saying something went wrong.
    expect(await page.locator('#error').isHidden()).toBe(true);
    expect(await page.getByRole('button', { name: 'Refund this payment' }).isDisabled()).toBe(true);
    expect(pageErrors.filter((e) => !/status of 429/.test(e))).toEqual([]);
  }, 60_000);

  it('offers the refund when the check for an earlier one meets a 429, instead of a button that stays disabled', async () => {
    const limited = await rateLimitStatusReads(1);
    await checkout('pm_card_visa', 'limited-load@example.com', 'checkoutVisa');
    await page.waitForURL((u) => u.pathname === '/demo/success.html');
    await page.locator('#refund:enabled').waitFor({ timeout: 10_000 });
    expect(limited).toHaveLength(1);
    expect(visible(await page.locator('#error .problem-title').textContent())).toBe(
      'Too Many Requests (429)',
    );
    await page.getByRole('button', { name: 'Refund this payment' }).click();
    await page.locator('#refund-status[data-status="succeeded"]').waitFor({ timeout: 20_000 });
    expect(await page.locator('#error').isHidden()).toBe(true);
    expect(pageErrors.filter((e) => !/status of 429/.test(e))).toEqual([]);
  }, 60_000);

  it('waits out a 503 on its read of the paid session instead of saying "Order not found"', async () => {
    // As the service answers when Stripe does not: the customer has just paid, and the page told them no such order.
    const blips = await answerWithProblem('**/checkout-session?**', 1, {
      status: 503,
      title: 'Service Unavailable',
      detail: 'Stripe did not answer; retry later.',
      code: 'upstream_unavailable',
    });
    await checkout('pm_card_visa', 'blip@example.com', 'checkoutVisa');
    await page.waitForURL((u) => u.pathname === '/demo/success.html');
    await page.locator('#payment-status[data-status="paid"]').waitFor({ timeout: 10_000 });
    expect(blips).toHaveLength(1);
    expect(await page.locator('h1').textContent()).toBe('Thank you for your order');
    await page.locator('#refund:enabled').waitFor();
    expect(await page.locator('#error').isHidden()).toBe(true);
    expect(pageErrors.filter((e) => !/status of 503/.test(e))).toEqual([]);
  }, 60_000);

  it('keeps the quantity and the amount of a line apart on the checkout page of a phone', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    await page.goto(`${svc.url}/demo/`);
    await page.locator('body[data-ready="true"]').waitFor();
    await page.getByRole('button', { name: 'Buy now' }).click();
    await page.waitForURL(/\/checkout\/cs_[^/]+$/);
    // Where the text itself is drawn: the cells touch, and with no padding "1" and "$25.00 SGD" read as "1$25.00".
    const textBox = (selector: string) =>
      page.locator(selector).evaluate((cell) => {
        const range = cell.ownerDocument.createRange();
        range.selectNodeContents(cell);
        const box = range.getBoundingClientRect();
        return { left: box.left, right: box.right };
      });
    const quantity = await textBox('.line-item td.qty');
    const amount = await textBox('.line-item td.qty + td');
    expect(amount.left - quantity.right).toBeGreaterThanOrEqual(8);
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('shows an API problem readably (unknown checkout session)', async () => {
    await page.goto(`${svc.url}/demo/success.html?session_id=cs_test_doesnotexist`);
    const alert = page.locator('#error');
    await alert.waitFor();
    expect(await alert.getAttribute('role')).toBe('alert');
    expect(visible(await alert.locator('.problem-title').textContent())).toBe('Not Found (404)');
    expect(visible(await alert.locator('.problem-detail').textContent())).toMatch(/checkout session/i);
    expect(visible(await alert.locator('.problem-meta').textContent())).toMatch(/request \S+/);
    expect(await page.locator('h1').textContent()).toBe('Order not found');
    expect(await page.locator('#session').isHidden()).toBe(true);
    await shot(page, 'problemNotFound');
    expectShots('problemNotFound');
    expect(pageErrors).toEqual([]);
  }, 60_000);
});

describe.skipIf(!haveChromium)('demo storefront with API_AUTH=on', () => {
  let svc: TestService;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let pageErrors: string[];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    svc = await startTestService(
      'sqlite',
      { API_AUTH: 'on' },
      { extraRoutes: (app, deps) => mountDemo(app, { authRequired: deps.config.auth.enabled }) },
    );
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await svc?.stop();
  });
  beforeEach(async () => {
    context = await browser.newContext({ locale: 'en-US' });
    page = await context.newPage();
    pageErrors = watchPageErrors(page);
  });
  afterEach(async () => {
    await context?.close();
  });

  it('says the demo needs auth off and does not offer to buy', async () => {
    await page.goto(`${svc.url}/demo/`);
    const notice = page.locator('#auth-notice');
    await notice.waitFor();
    expect(visible(await notice.textContent())).toContain('API_AUTH=on');
    expect(await page.getByRole('button', { name: 'Buy now' }).isDisabled()).toBe(true);
    expect(await page.content()).not.toMatch(/psk_|ppk_|sk_test_/);
    await shot(page, 'authNotice');
    expectShots('authNotice');
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('shows the notice and the 401 problem when the page was not told auth is on', async () => {
    // As if mountDemo had been called without authRequired: the page only learns it from the API.
    await page.route('**/demo/config.json', async (route) => {
      const real = (await (await route.fetch()).json()) as Record<string, unknown>;
      await route.fulfill({ json: { ...real, authRequired: false } });
    });
    await page.goto(`${svc.url}/demo/`);
    await page.locator('body[data-ready="true"]').waitFor();
    expect(await page.locator('#auth-notice').isHidden()).toBe(true);
    await page.getByRole('button', { name: 'Buy now' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(visible(await alert.locator('.problem-title').textContent())).toBe('Unauthorized (401)');
    expect(visible(await alert.locator('.problem-meta').textContent())).toContain('code unauthenticated');
    expect(await page.locator('#auth-notice').isVisible()).toBe(true);
    expect(new URL(page.url()).pathname).toBe('/demo/');
    await shot(page, 'authDiscovered');
    expectShots('authDiscovered');
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
