/**
 * A leaked key taken out of API_KEYS can still be revoked by hand, and then stays revoked when a process starts
 * with the earlier API_KEYS again.
 *
 * README (API keys): the keys follow the API_KEYS of the process that started last, and "A key revoked with
 * `npm run keys -- revoke` stays revoked, listed or not: do that to a leaked key." Taking a leaked key out of
 * API_KEYS revokes it as left out (`<owner> (left out of API_KEYS)`), which a start listing it again undoes. The
 * revoke then answered `no active key <id>` (exit 1) and changed nothing (ApiKeysRepo.revoke only touches an active
 * key), so a rollback or an old replica restarted during the update made the leaked key active again (it paid: 200).
 * Failed before on both steps.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

const require = createRequire(import.meta.url);
const TSX = require.resolve('tsx');
const root = path.resolve(import.meta.dirname, '../..');

const LEAKED = 'psk_leaked_secret_key_for_revoke_left_out_test_01';
const OTHER = 'psk_other_secret_key_for_revoke_left_out_test_001';
const ALL_SCOPES = 'payments:write,payments:read,refunds:write,refunds:read';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

let dir: string;
let svc: TestService | undefined;
const ledger = () => `sqlite:${path.join(dir, 'ledger.db')}`;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'revoke-left-out-'));
});
afterEach(async () => {
  await svc?.stop();
  svc = undefined;
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function start(apiKeys: string): Promise<TestService> {
  svc = await startTestService('sqlite', { API_AUTH: 'on', DATABASE_URL: ledger(), API_KEYS: apiKeys });
  return svc;
}

async function stop(): Promise<void> {
  await svc?.stop();
  svc = undefined;
}

/** `npm run keys -- <args>` on the service's ledger (the service stopped: it holds its SQLite file). */
function keysCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, path.join(root, 'scripts/keys.ts'), ...args], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: dir, DATABASE_URL: ledger() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const createIntent = (s: TestService, key: string) =>
  postJson(`${s.url}/payment-intent`, { amount: 1000, currency: 'usd' }, bearer(key));

describe('a leaked provisioned key, taken out of API_KEYS, then revoked with npm run keys -- revoke', () => {
  it('stays revoked when a process starts with the earlier API_KEYS again', async () => {
    const before = `shop|${ALL_SCOPES}|${LEAKED} shop|${ALL_SCOPES}|${OTHER}`;
    let s = await start(before);
    expect((await createIntent(s, LEAKED)).status).toBe(200);
    const leakedId = (await s.deps.store.apiKeys.list('shop')).find(
      (k) => k.prefix === LEAKED.slice(0, 12),
    )!.id;
    await stop();

    // The leak: the key is taken out of API_KEYS and the service redeployed. It stops working.
    s = await start(`shop|${ALL_SCOPES}|${OTHER}`);
    expect((await createIntent(s, LEAKED)).status).toBe(401);
    await stop();

    // As README says to do to a leaked key.
    const revoked = await keysCli(['revoke', leakedId]);
    expect(revoked, 'npm run keys -- revoke of the leaked key').toMatchObject({
      code: 0,
      stdout: `revoked ${leakedId}\n`,
    });

    // A process of the previous deployment starts again (a rollback, or an old replica during the update).
    s = await start(before);
    const again = await createIntent(s, LEAKED);
    expect(again.status, 'the leaked key after a start with the earlier API_KEYS').toBe(401);
  }, 60_000);
});
