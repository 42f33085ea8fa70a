/**
 * Clickjacking: another site frames a page that acts on one click, hides it under a decoy and gets the click.
 * The sandbox's hosted checkout page pays on one click on Pay, so, like Stripe's own Checkout, it must refuse
 * to be framed by any site.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { chromiumAvailable, launchChromium } from './browser.js';

const haveChromium = chromiumAvailable();

describe.skipIf(!haveChromium)('framing by another site', () => {
  let svc: TestService;
  /** The attacker's site: a page that frames whatever `framed` names, on an origin of its own. */
  let attacker: Server;
  let attackerUrl: string;
  let framed = 'about:blank';
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    svc = await startTestService('sqlite');
    // On the loopback address like the sandbox: Chromium keeps public sites out of local ones whatever the page
    // says, so an attacker's page served from here is the case the page's own headers must decide.
    attacker = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(
        `<!doctype html><p>Win a prize: click the button!</p><iframe src="${framed}" width="600" height="700"></iframe>`,
      );
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => attacker?.close(resolve));
    await svc?.stop();
  });
  beforeEach(async () => {
    context = await browser.newContext();
    page = await context.newPage();
  });
  afterEach(async () => {
    await context?.close();
  });

  async function checkoutUrl(): Promise<string> {
    const res = await postJson(`${svc.url}/create-checkout-session`, {
      line_items: [
        { price_data: { currency: 'sgd', product_data: { name: 'Mug' }, unit_amount: 2500 }, quantity: 1 },
      ],
      success_url: `${svc.url}/demo/success.html?session_id={CHECKOUT_SESSION_ID}`,
      cancel_url: `${svc.url}/demo/`,
    });
    expect(res.status).toBe(200);
    return res.json.url as string;
  }

  /** Opens the attacker's page framing `target`; answers the frame once the page and its frame have loaded. */
  async function framedByAttacker(target: string) {
    framed = target;
    await page.goto(`${attackerUrl}/`, { waitUntil: 'load' });
    const frame = page.frames().find((f) => f !== page.mainFrame());
    expect(frame).toBeDefined();
    return frame!;
  }

  it('the hosted checkout page shows nothing inside another site, so its Pay button cannot be clicked there', async () => {
    const url = await checkoutUrl();
    // Opened directly, the customer sees the Pay button...
    await page.goto(url);
    expect(await page.locator('#pay').count()).toBe(1);

    // ...framed by another site, the browser refuses to show the page at all.
    const frame = await framedByAttacker(url);
    expect(await frame.locator('#pay').count()).toBe(0);
    expect(await frame.locator('#checkout-form').count()).toBe(0);
  }, 60_000);
});
