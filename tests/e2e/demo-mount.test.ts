/**
 * What mountDemo serves, without a browser: the pages, their configuration, and a content policy that
 * still works when the demo is opened over plain http from another machine.
 */
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { mountDemo } from '../../src/demo/mount.js';
import { securityHeaders } from '../../src/http/security.js';
import { serve, type Served } from '../helpers/http.js';

let served: Served | undefined;
afterEach(async () => {
  await served?.close();
  served = undefined;
});

async function start(opts: Parameters<typeof mountDemo>[1]): Promise<string> {
  const app = express();
  // As in buildApp: the pages get helmet's browser policy first and the demo narrows it for its own pages.
  app.use(securityHeaders());
  mountDemo(app, opts);
  app.get('/elsewhere', (_req, res) => {
    res.send('not the demo');
  });
  served = await serve(app);
  return served.url;
}

describe('mountDemo', () => {
  it('serves the storefront, the success page and their scripts from /demo', async () => {
    const url = await start({});
    const bare = await fetch(`${url}/demo`, { redirect: 'manual' });
    expect(bare.status).toBe(301);
    expect(bare.headers.get('location')).toBe('/demo/');
    for (const [path, type] of [
      ['/demo/', 'text/html'],
      ['/demo/success.html', 'text/html'],
      ['/demo/shop.js', 'text/javascript'],
      ['/demo/success.js', 'text/javascript'],
      ['/demo/demo.css', 'text/css'],
    ] as const) {
      const res = await fetch(`${url}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toContain(type);
    }
    const html = await (await fetch(`${url}/demo/`)).text();
    expect(html).toContain('<script type="module" src="shop.js"></script>');
    // The policy allows no inline script, so the pages must carry none.
    expect(html).not.toMatch(/<script(?![^>]*\ssrc=)[^>]*>/);
    expect(html).not.toMatch(/\son[a-z]+=/);
  });

  it('gives every page an icon it serves, so a browser does not ask for /favicon.ico (a 404 problem)', async () => {
    const url = await start({});
    for (const page of ['/demo/', '/demo/success.html']) {
      const html = await (await fetch(`${url}${page}`)).text();
      const href = /<link rel="icon"[^>]*\shref="([^"]+)"/.exec(html)?.[1];
      expect(href, page).toBeDefined();
      const icon = await fetch(new URL(href!, `${url}${page}`));
      expect(icon.status, page).toBe(200);
      expect(icon.headers.get('content-type'), page).toMatch(/^image\/svg\+xml/);
      // The pages' policy lets them load images from their own origin.
      expect(icon.url.startsWith(`${url}/demo/`)).toBe(true);
      expect(await icon.text()).toMatch(/^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    }
  });

  it('tells the pages where the API is and whether it wants keys, and nothing secret', async () => {
    const url = await start({ apiBase: 'https://payments.example.com/', authRequired: true });
    const res = await fetch(`${url}/demo/config.json`);
    expect(res.status).toBe(200);
    const config = (await res.json()) as Record<string, unknown>;
    expect(config).toMatchObject({ apiBase: 'https://payments.example.com', authRequired: true });
    expect(config.zeroDecimalCurrencies).toEqual(expect.arrayContaining(['jpy', 'krw']));
    expect(config.zeroDecimalCurrencies).not.toContain('sgd');
    expect(config.threeDecimalCurrencies).toEqual(['bhd', 'jod', 'kwd', 'omr', 'tnd']);
    expect(config.wholeHundredsCurrencies).toEqual(['isk', 'ugx']);
    expect(config.zeroDecimalCurrencies).not.toContain('ugx');
    expect(Object.keys(config).sort()).toEqual([
      'apiBase',
      'authRequired',
      'threeDecimalCurrencies',
      'wholeHundredsCurrencies',
      'zeroDecimalCurrencies',
    ]);
  });

  it('answers the pages with a policy that does not upgrade http and lets them reach the API', async () => {
    const url = await start({ apiBase: 'http://10.0.0.5:5000' });
    const csp = (await fetch(`${url}/demo/`)).headers.get('content-security-policy') ?? '';
    expect(csp).not.toContain('upgrade-insecure-requests');
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).toMatch(/connect-src 'self' http:\/\/10\.0\.0\.5:5000(;|$)/);
    expect(csp).toContain("object-src 'none'");
    // The demo keeps helmet's other browser headers.
    const page = await fetch(`${url}/demo/`);
    expect(page.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(page.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    // Routes outside the pages get the API's policy: nothing may run, nothing may frame them.
    const other = await fetch(`${url}/elsewhere`);
    expect(other.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(other.headers.get('x-frame-options')).toBe('DENY');
  });
});
