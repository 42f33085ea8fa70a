/**
 * What /docs serves besides the API reference's page. swagger-ui-dist holds more than the page needs: its own
 * index.html (the Swagger Petstore), its initializer, source maps, a README. Served as they were, /docs/index.html
 * (a link anyone may write or bookmark) showed "Swagger UI" failing to load the Petstore's definition, which its
 * policy does not let it fetch, and any path under /docs answered the reference's HTML.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { chromiumAvailable, launchChromium, watchPageErrors } from './browser.js';

const haveChromium = chromiumAvailable();

describe('files under /docs', () => {
  let svc: TestService;

  beforeAll(async () => {
    svc = await startTestService('sqlite');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('serves the files the reference page loads', async () => {
    const page = await fetch(`${svc.url}/docs/`);
    expect(page.status).toBe(200);
    const html = await page.text();
    const refs = [...html.matchAll(/(?:href|src)="\.\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs).toContain('swagger-ui-init.js');
    for (const ref of refs) {
      const res = await fetch(`${svc.url}/docs/${ref}`);
      expect(res.status, ref).toBe(200);
      expect(res.headers.get('content-type'), ref).not.toMatch(/^text\/html/);
    }
  });

  it('serves nothing else of swagger-ui-dist, and no page at other paths', async () => {
    for (const path of [
      '/docs/swagger-initializer.js',
      '/docs/README.md',
      '/docs/swagger-ui.js.map',
      '/docs/oauth2-redirect.html',
      '/docs/LICENSE',
      '/docs/nested/path',
      '/docs//evil.example',
    ]) {
      const res = await fetch(`${svc.url}${path}`, { redirect: 'manual' });
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type') ?? '', path).not.toMatch(/^text\/html/);
    }
  });

  it.skipIf(!haveChromium)(
    '/docs/index.html leads to the API reference, not the Swagger Petstore',
    async () => {
      let browser: Browser | undefined;
      try {
        browser = await launchChromium();
        const page = await browser.newPage();
        const errors = watchPageErrors(page);
        await page.goto(`${svc.url}/docs/index.html`, { waitUntil: 'load' });
        const title = page.locator('.swagger-ui .info .title');
        await title.waitFor({ timeout: 15_000 });
        expect(await title.textContent()).toContain('Stripe Payment Service');
        expect(new URL(page.url()).pathname).toBe('/docs/');
        expect(await page.locator('.errors-wrapper').count()).toBe(0);
        expect(errors).toEqual([]);
      } finally {
        await browser?.close();
      }
    },
    60_000,
  );
});
