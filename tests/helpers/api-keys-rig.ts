/**
 * For tests of what API_KEYS and `npm run keys` do across restarts: a service with API keys on, restarted with new
 * settings on one SQLite ledger that outlives each start (its own temporary directory), and the keys CLI run on
 * that ledger. Call at the top of a test file: it registers the hooks that make and remove the directory and stop
 * the service after each test.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { postJson } from './http.js';
import { runScript, type ScriptRun } from './processes.js';
import { startTestService, type TestService } from './service.js';

export const ALL_SCOPES = 'payments:write,payments:read,refunds:write,refunds:read';
export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

export function apiKeysRig(name: string) {
  let dir = '';
  let svc: TestService | undefined;
  const ledger = () => `sqlite:${path.join(dir, 'ledger.db')}`;
  const stop = async () => {
    await svc?.stop();
    svc = undefined;
  };
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), `${name}-`));
  });
  afterEach(stop);
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    /** Starts the service on the ledger, with API_KEYS as given (unset: undefined). */
    async start(apiKeys: string | undefined): Promise<TestService> {
      svc = await startTestService('sqlite', {
        API_AUTH: 'on',
        DATABASE_URL: ledger(),
        ...(apiKeys === undefined ? {} : { API_KEYS: apiKeys }),
      });
      return svc;
    },
    stop,
    createIntent: (s: TestService, key: string) =>
      postJson(`${s.url}/payment-intent`, { amount: 1000, currency: 'usd' }, bearer(key)),
    /** `npm run keys -- <args>` on the ledger (with the service stopped: it holds its SQLite file). */
    keysCli: (args: string[]): Promise<ScriptRun> =>
      runScript('scripts/keys.ts', args, {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', HOME: dir, DATABASE_URL: ledger() },
      }),
  };
}
