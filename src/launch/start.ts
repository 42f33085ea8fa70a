/**
 * What `npm start`, `npm run worker` and the Docker image run, built by scripts/bundle.mjs into
 * dist/src/main.bundle.mjs: loads the service's bundle (dist/src/main.bundle.cjs, beside it) with V8's
 * code cache (see ./code-cache.ts) and starts it. A start that had no usable cache writes one a second
 * after the service is up, for the next start.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadBundle } from './code-cache.js';
import type { MainOptions } from '../main.js';

const SAVE_CACHE_AFTER_MS = 1_000;

const bundle = loadBundle(path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.bundle.cjs'), {
  // PAYMENTS_CODE_CACHE=off compiles everything afresh and writes nothing (to measure the cache, or rule it out).
  useCache: process.env['PAYMENTS_CODE_CACHE'] !== 'off',
});
const main = bundle.exports['main'] as (opts: MainOptions) => Promise<void>;
const errorForStderr = bundle.exports['errorForStderr'] as (err: unknown) => string;
try {
  await main({
    codeCache: bundle.cache,
    // A no-op when the cache was used or is off.
    onStarted: () => setTimeout(() => bundle.saveCache(), SAVE_CACHE_AFTER_MS).unref(),
  });
} catch (err) {
  // As src/main.ts does when run directly: through the secret filter, not Node's own report of a rejection.
  console.error(errorForStderr(err));
  process.exit(1);
}
