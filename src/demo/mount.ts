/**
 * The demo storefront at /demo: a shop page that starts a checkout, and a success page that shows the
 * paid session and follows an async refund. Plain static files calling the public API, as a shop's own
 * front end would; mounted by the composition root in embedded mode only.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express, { type Express, type RequestHandler } from 'express';
import {
  THREE_DECIMAL_CURRENCIES,
  WHOLE_HUNDREDS_CURRENCIES,
  ZERO_DECIMAL_CURRENCIES,
} from '../money/currencies.js';

export interface DemoOptions {
  /** Where the pages send API calls; same origin as the page when absent. */
  apiBase?: string;
  /** True when the API wants keys (API_AUTH=on): the pages then say the demo needs auth off. */
  authRequired?: boolean;
  /** Folder holding the static files, when neither built-in layout applies. */
  publicDir?: string;
}

/** What the pages read from /demo/config.json before calling the API. */
export interface DemoClientConfig {
  apiBase: string;
  authRequired: boolean;
  zeroDecimalCurrencies: string[];
  /** Currencies whose amounts count thousandths (5120 kwd is 5.120 KWD). */
  threeDecimalCurrencies: string[];
  /** Currencies whose amounts are two-decimal values always ending in 00 (500 isk is 5 ISK). */
  wholeHundredsCurrencies: string[];
}

export const DEMO_PATH = '/demo';

/**
 * tsc does not copy non-TS files, so from dist/src/demo/ the assets are found back in the source tree
 * (dist/ sits at the repository root next to src/).
 */
export function resolveDemoAssets(explicit?: string): string | null {
  const candidates = [
    ...(explicit ? [explicit] : []),
    fileURLToPath(new URL('./public/', import.meta.url)),
    fileURLToPath(new URL('../../../src/demo/public/', import.meta.url)),
    // From the bundle (dist/src/main.bundle.mjs): scripts/bundle.mjs copies the assets to dist/src/demo/public.
    fileURLToPath(new URL('./demo/public/', import.meta.url)),
  ];
  return candidates.find((dir) => existsSync(`${dir.replace(/\/?$/, '/')}index.html`)) ?? null;
}

function originOf(apiBase: string): string | null {
  try {
    return new URL(apiBase).origin;
  } catch {
    return null; // relative base: same origin as the page
  }
}

/**
 * The pages need no inline code or style, so their policy is stricter than the one Swagger UI needs, and it lets
 * them reach the API when it is on another origin. Like that one, it does not upgrade insecure requests, which
 * would break a demo opened over plain http on anything but localhost.
 */
function demoCsp(apiBase: string): RequestHandler {
  const apiOrigin = originOf(apiBase);
  const policy = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${apiOrigin ? ` ${apiOrigin}` : ''}`,
    "form-action 'self'",
    "frame-ancestors 'self'",
    "base-uri 'self'",
    "object-src 'none'",
  ].join('; ');
  return (_req, res, next) => {
    res.setHeader('Content-Security-Policy', policy);
    next();
  };
}

export function mountDemo(app: Express, opts: DemoOptions = {}): void {
  const apiBase = (opts.apiBase ?? '').replace(/\/+$/, '');
  const dir = resolveDemoAssets(opts.publicDir);
  const config: DemoClientConfig = {
    apiBase,
    authRequired: opts.authRequired ?? false,
    zeroDecimalCurrencies: [...ZERO_DECIMAL_CURRENCIES].sort(),
    threeDecimalCurrencies: [...THREE_DECIMAL_CURRENCIES].sort(),
    wholeHundredsCurrencies: [...WHOLE_HUNDREDS_CURRENCIES].sort(),
  };

  // A router of its own does not take the app's case-sensitive routing (see buildApp): /demo/Config.json is no page.
  const router = express.Router({ caseSensitive: true });
  router.use(demoCsp(apiBase));
  // The pages are tiny and change with the service; a stale cached script is worse than a refetch.
  router.use((_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  router.get('/config.json', (_req, res) => {
    res.json(config);
  });
  if (dir) {
    router.use(express.static(dir, { index: 'index.html', redirect: true, dotfiles: 'ignore' }));
  } else {
    // Without the assets (a dist/-only image) the API must still start; say why the demo is missing.
    router.get('/', (_req, res) => {
      res
        .status(404)
        .type('text/plain')
        .send('The demo storefront files (src/demo/public/) are not deployed with this build.');
    });
  }
  app.use(DEMO_PATH, router);
}
