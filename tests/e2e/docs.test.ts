/**
 * The API reference (Swagger UI at /docs) in a real browser, opened as a team opens it on a server or a
 * container: over plain http, under a name that is not localhost (a page policy that upgrades insecure requests
 * sent every script and style of the page to https, which that server does not speak: the page stayed blank),
 * and on another port than the contract's example server ("Try it out" called that one and always failed).
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { chromiumAvailable, launchChromium, watchPageErrors } from './browser.js';

/**
 * Clicks an operation's "Try it out". The page's deep link (`#/Tag/operationId`) opens the operation once the
 * contract is rendered; on a loaded machine the button was found but never shown within 30 s, so an operation
 * still closed after a while is opened by its summary, as a reader would.
 */
async function tryOut(operation: ReturnType<Page['locator']>): Promise<void> {
  const button = operation.locator('.try-out__btn');
  await operation.locator('.opblock-summary').waitFor({ timeout: 20_000 });
  const shown = await button
    .waitFor({ state: 'visible', timeout: 5_000 })
    .then(() => true)
    .catch(() => false);
  if (!shown) await operation.locator('.opblock-summary').click();
  await button.click();
}

const haveChromium = chromiumAvailable();

/** Resolved to the service's loopback address by Chromium itself: no DNS, and not "localhost" to the browser. */
const HOST = 'payments.test';

describe.skipIf(!haveChromium)('Swagger UI over plain http', () => {
  let svc: TestService;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    svc = await startTestService('sqlite');
    browser = await launchChromium([`--host-resolver-rules=MAP ${HOST} 127.0.0.1`]);
  });
  afterAll(async () => {
    await browser?.close();
    await svc?.stop();
  });

  it('shows the API reference when opened by a host name over http', async () => {
    // On every address, as on a server or in a container: a service listening on loopback answers only loopback
    // names (DNS rebinding), and payments.test is none.
    const onServer = await startTestService('sqlite', { HOST: '0.0.0.0' });
    const context = await browser.newContext();
    try {
      page = await context.newPage();
      const errors = watchPageErrors(page);
      const failed: string[] = [];
      page.on('requestfailed', (req) => failed.push(`${req.url()}: ${req.failure()?.errorText ?? ''}`));
      const docs = `http://${HOST}:${new URL(onServer.url).port}/docs/`;
      // 'load' waits for the page's scripts and styles, whether they arrived or failed.
      await page.goto(docs, { waitUntil: 'load' });
      expect(failed).toEqual([]);
      const title = page.locator('.swagger-ui .info .title');
      await title.waitFor({ timeout: 10_000 });
      expect(await title.textContent()).toContain('Stripe Payment Service');
      expect(
        await page.locator('.opblock-summary-path', { hasText: '/create-checkout-session' }).count(),
      ).toBe(1);
      // Chromium says that it ignores Cross-Origin-Opener-Policy on a plain-http origin: a notice, not a failure.
      expect(errors.filter((e) => !e.includes('Cross-Origin-Opener-Policy'))).toEqual([]);
    } finally {
      await context.close();
      await onServer.stop();
    }
  }, 60_000);

  it('"Try it out" calls the service that served the page, wherever it runs', async () => {
    const context = await browser.newContext();
    try {
      page = await context.newPage();
      const errors = watchPageErrors(page);
      // Not the contract's default server (http://127.0.0.1:5000): the service runs on a port of its own here.
      await page.goto(`${svc.url}/docs/#/Operations/getHealth`);
      const operation = page.locator('#operations-Operations-getHealth');
      await tryOut(operation);
      await operation.locator('.execute').click();
      const response = operation.locator('.live-responses-table .response');
      await response.waitFor({ timeout: 10_000 });
      expect(await operation.locator('.request-url').textContent()).toContain(`${svc.url}/healthz`);
      expect((await response.locator('.response-col_status').textContent())?.trim()).toBe('200');
      expect(await response.locator('.response-col_description').textContent()).toContain('"status": "ok"');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('"Try it out" on a POST makes a new object each time, not a replay of the first try', async () => {
    const context = await browser.newContext();
    try {
      page = await context.newPage();
      const errors = watchPageErrors(page);
      await page.goto(`${svc.url}/docs/#/Checkout/createCheckoutSession`);
      const operation = page.locator('#operations-Checkout-createCheckoutSession');
      await tryOut(operation);
      const sessionIds: string[] = [];
      const headers: string[] = [];
      for (let i = 0; i < 2; i++) {
        const answered = page.waitForResponse((r) => r.url().endsWith('/create-checkout-session'));
        await operation.locator('.execute').click();
        const response = await answered;
        expect(response.status()).toBe(200);
        sessionIds.push(((await response.json()) as { id: string }).id);
        headers.push(response.headers()['idempotent-replayed'] ?? '');
      }
      expect(sessionIds[0]).toMatch(/^cs_/);
      expect(sessionIds[1]).not.toBe(sessionIds[0]);
      expect(headers).toEqual(['', '']);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
