/**
 * `node [flags] dist/src/launch/prime.js`: writes the code cache of dist/src/main.bundle.cjs for the flags
 * it runs with (see ./code-cache.ts). `npm run build` runs it; so does the Docker image, under its own
 * NODE_OPTIONS.
 *
 * To put what a start compiles into the cache, it starts the service once in the embedded mode, on an
 * ephemeral port, with an in-memory SQLite database, the in-process queue and the embedded sandbox, in an
 * empty temporary directory (no .env) and an environment of its own; asks GET /healthz (the contract
 * validator is built on the first request); then writes the cache and exits. Nothing outside the process
 * is touched. Exits 0 even when no cache could be written: the service then starts without one, only slower.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MainOptions } from '../main.js';
import { loadBundle } from './code-cache.js';

const GIVE_UP_MS = 30_000;

const bundleFile = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'main.bundle.cjs');
const workDir = mkdtempSync(path.join(tmpdir(), 'payments-prime-'));

function finish(message: string, code = 0): never {
  console.log(message);
  rmSync(workDir, { recursive: true, force: true });
  process.exit(code);
}

const bundle = loadBundle(bundleFile);
if (bundle.cache === 'used') finish(`code cache: ${bundle.cacheFile} is up to date`);

setTimeout(() => {
  finish(
    bundle.saveCache() ? 'code cache: written (the service did not start in time)' : 'no code cache written',
  );
}, GIVE_UP_MS).unref();

const keep = ['PATH', 'HOME', 'NODE_OPTIONS', 'TMPDIR'];
for (const name of Object.keys(process.env)) if (!keep.includes(name)) delete process.env[name];
Object.assign(process.env, {
  NODE_ENV: 'development',
  PORT: '0',
  HOST: '127.0.0.1',
  DATABASE_URL: 'sqlite::memory:',
  LOG_LEVEL: 'silent',
});
process.chdir(workDir);

const main = bundle.exports['main'] as (opts: MainOptions) => Promise<void>;
try {
  await main({
    onStarted: (url) => {
      void fetch(`${url}/healthz`)
        .then((res) => res.arrayBuffer())
        .catch(() => undefined)
        .then(() => {
          finish(bundle.saveCache() ? 'code cache: written' : 'warning: could not write the code cache');
        });
    },
  });
} catch (err) {
  // What the modules compiled is still worth caching; the build goes on either way.
  console.warn(
    `warning: the embedded service did not start for the code cache: ${(bundle.exports['errorForStderr'] as (e: unknown, o: { messageOnly: boolean }) => string)(err, { messageOnly: true })}`,
  );
  finish(bundle.saveCache() ? 'code cache: written (modules only)' : 'no code cache written');
}
