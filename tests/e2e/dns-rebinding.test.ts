/**
 * DNS rebinding in a real browser. The attacker's page is served at http://evil.example:PORT (the test fulfils
 * that first request as the attacker's server would); then the name resolves to 127.0.0.1 (Chromium's
 * --host-resolver-rules), and the page's same-origin fetches reach the service that listens there. They must be
 * refused, and the pages opened as README says (http://127.0.0.1:PORT, localhost) keep working.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { chromiumAvailable, launchChromium } from './browser.js';

const haveChromium = chromiumAvailable();
const EVIL = 'evil.example';

describe.skipIf(!haveChromium)('a rebound page in Chromium', () => {
  let svc: TestService;
  let browser: Browser;

  beforeAll(async () => {
    svc = await startTestService('sqlite');
    // Chromium itself asks the user before a page from a public address reaches a local one (Local Network
    // Access); Firefox and Safari do not, and a user may allow it. Off here, to see what the service does.
    browser = await launchChromium([
      `--host-resolver-rules=MAP ${EVIL} 127.0.0.1`,
      '--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests',
    ]);
  });
  afterAll(async () => {
    await browser?.close();
    await svc?.stop();
  });

  it('cannot pay through the service or read its answers', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const origin = `http://${EVIL}:${new URL(svc.url).port}`;
      // The attacker's server answers the first load; every later request goes to the network, i.e. the service.
      await page.route(`${origin}/`, (route) =>
        route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>cats</title>' }),
      );
      await page.goto(`${origin}/`);
      const seen = await page.evaluate(async () => {
        const res = await fetch('/payment-intent', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            amount: 10000,
            currency: 'sgd',
            payment_method: 'pm_card_visa',
            confirm: true,
          }),
        });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      });
      expect(seen.status).toBe(421);
      expect(seen.body).toMatchObject({ code: 'host_not_allowed' });
      expect(seen.body).not.toHaveProperty('clientSecret');
      expect(svc.deps.sandbox!.stats().paymentIntents).toBe(0);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('the API reference still answers "Try it out" at localhost', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const base = `http://localhost:${new URL(svc.url).port}`;
      await page.goto(`${base}/docs/#/Operations/getHealth`);
      const operation = page.locator('#operations-Operations-getHealth');
      await operation.locator('.try-out__btn').click();
      await operation.locator('.execute').click();
      const response = operation.locator('.live-responses-table .response');
      await response.waitFor({ timeout: 10_000 });
      expect((await response.locator('.response-col_status').textContent())?.trim()).toBe('200');
    } finally {
      await context.close();
    }
  }, 60_000);
});
