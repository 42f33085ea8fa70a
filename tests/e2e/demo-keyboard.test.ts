/**
 * The demo storefront with the keyboard alone: a button that is disabled while it works must not drop the
 * keyboard's (and a screen reader's) place on the page, so the user is left where the outcome is shown.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mountDemo } from '../../src/demo/mount.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { chromiumAvailable, launchChromium, watchPageErrors } from './browser.js';

const haveChromium = chromiumAvailable();

/** What has the keyboard focus (null when nothing does, the page's body): its id, its text, where it is. */
async function focused(page: Page): Promise<{ id: string | null; text: string; inRefund: boolean } | null> {
  const el = page.locator(':focus');
  if ((await el.count()) === 0) return null;
  return {
    id: await el.getAttribute('id'),
    text: ((await el.textContent()) ?? '').replace(/\s+/g, ' ').trim(),
    inRefund: (await page.locator('#refund-section :focus').count()) === 1,
  };
}

/** Presses Tab until `selector` has the focus (as a keyboard user reaches it), at most `max` times. */
async function tabTo(page: Page, selector: string, max = 10): Promise<void> {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    if ((await page.locator(`${selector}:focus`).count()) === 1) return;
  }
  throw new Error(`${selector} was not reached with Tab`);
}

describe.skipIf(!haveChromium)('demo storefront with the keyboard', () => {
  let svc: TestService;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let pageErrors: string[];

  beforeAll(async () => {
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
    context = await browser.newContext({ locale: 'en-US' });
    page = await context.newPage();
    pageErrors = watchPageErrors(page);
  });
  afterEach(async () => {
    await svc.faults({});
    await context?.close();
  });

  it('buys, pays and refunds with Tab and Enter, and the refund keeps the focus on its progress', async () => {
    await page.goto(`${svc.url}/demo/`);
    await page.locator('body[data-ready="true"]').waitFor();
    await tabTo(page, '#quantity');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('2');
    await tabTo(page, '#buy');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/checkout\/cs_[^/]+$/);

    await tabTo(page, '#email');
    await page.keyboard.type('keys@example.com');
    await tabTo(page, '#pay');
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.pathname === '/demo/success.html');
    await page.locator('#refund:enabled').waitFor();

    await tabTo(page, '#refund');
    await page.keyboard.press('Enter');
    await page.locator('#refund-status[data-final="true"]').waitFor({ timeout: 20_000 });
    // The button is disabled once pressed; the focus it had must go to what the page now shows (the refund's
    // status), not to nowhere, where a screen reader starts again from the top of the page.
    const after = await focused(page);
    expect(after).not.toBeNull();
    expect(after!.inRefund).toBe(true);
    expect(after!.text).toContain('succeeded');
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('puts the focus on the reason when the checkout page refuses a card, so it is read out first', async () => {
    await page.goto(`${svc.url}/demo/`);
    await page.locator('body[data-ready="true"]').waitFor();
    await tabTo(page, '#buy');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/checkout\/cs_[^/]+$/);
    await tabTo(page, '#email');
    await page.keyboard.type('declined@example.com');
    await tabTo(page, '#payment_method');
    await page.selectOption('#payment_method', 'pm_card_chargeDeclined');
    await tabTo(page, '#pay');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').waitFor();
    // The answer is a new page: without a focus of its own, the keyboard starts again from its top, and a screen
    // reader does not say why the payment failed.
    const after = await focused(page);
    expect(after?.text).toMatch(/declined/i);
    expect(after?.text).toBe(((await page.getByRole('alert').textContent()) ?? '').trim());
    // From there the next Tab reaches the form again, to try another card.
    await tabTo(page, '#payment_method', 3);
    expect(await page.locator('#email').inputValue()).toBe('declined@example.com');
  }, 60_000);

  it('gives the focus back to Buy now when the purchase failed, so it can be tried again', async () => {
    await page.goto(`${svc.url}/demo/`);
    await page.locator('body[data-ready="true"]').waitFor();
    // Stripe refuses the checkout session: the API answers a problem and the page shows it.
    await svc.faults({ permission_error_rate: 1, match: { path_prefix: '/v1/checkout/sessions' } });
    await tabTo(page, '#buy');
    await page.keyboard.press('Enter');
    await page.locator('#error:not([hidden])').waitFor();
    await page.locator('#buy:enabled').waitFor();
    expect((await focused(page))?.id).toBe('buy');
    // Enter again is a second try: with Stripe answering again, it reaches the checkout page.
    await svc.faults({});
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/checkout\/cs_[^/]+$/);
  }, 60_000);
});
