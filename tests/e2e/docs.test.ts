/**
 * The API reference (Swagger UI at /docs) in a real browser, opened as a team opens it on a server or a
 * container: over plain http, under a name that is not localhost. A page policy that upgrades insecure requests
 * sends every script and style of the page to https, which that server does not speak: the page stayed blank.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { chromiumAvailable, launchChromium, watchPageErrors } from './browser.js';

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
    const context = await browser.newContext();
    try {
      page = await context.newPage();
      const errors = watchPageErrors(page);
      const failed: string[] = [];
      page.on('requestfailed', (req) => failed.push(`${req.url()}: ${req.failure()?.errorText ?? ''}`));
      const docs = `http://${HOST}:${new URL(svc.url).port}/docs/`;
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
    }
  }, 60_000);
});
