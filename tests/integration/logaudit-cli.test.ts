/**
 * The commands print to the terminal, not through the logger, so its filter never saw their lines: given a key
 * Stripe refuses, `npm run reconcile` and `npm run webhook` printed Stripe's message with the key's last characters.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { runScript } from '../helpers/processes.js';

function run(script: string, args: string[], env: Record<string, string>) {
  return runScript(script, args, { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd, ...env } });
}

let cwd: string;
let sandbox: Sandbox;
beforeAll(async () => {
  cwd = mkdtempSync(path.join(tmpdir(), 'logaudit-cli-'));
  sandbox = await startSandbox({ secretKey: 'sk_test_theKeyStripeKnows0000000001' });
});
afterAll(async () => {
  await sandbox?.close();
  if (cwd) rmSync(cwd, { recursive: true, force: true });
});

describe('npm run reconcile with a key Stripe refuses', () => {
  it('says so without any part of the key', async () => {
    const env = { DATABASE_URL: `sqlite:${path.join(cwd, 'ledger.db')}` };
    // A ledger to compare: `npm run keys` makes one.
    expect((await run('scripts/keys.ts', ['list'], env)).code).toBe(0);
    const res = await run('scripts/reconcile.ts', ['--since', '1h'], {
      ...env,
      STRIPE_SECRET_KEY: 'sk_test_rolled_key_TailQ7',
      STRIPE_API_BASE: sandbox.url,
    });
    expect(res.code).toBe(3);
    expect(res.stderr).toContain(
      'error: reconcile could not finish: Invalid API Key provided: sk_test_[REDACTED]',
    );
    expect(res.stderr).not.toContain('TailQ7');
    expect(res.stderr).not.toContain('ilQ7');
  }, 60_000);
});

describe('npm run webhook with a key Stripe refuses', () => {
  it('says it sends a made-up object, without any part of the key', async () => {
    const res = await run(
      'scripts/webhook-trigger.ts',
      ['payment_intent.succeeded', '--payment-intent', 'pi_3Abc', '--dry-run'],
      {
        STRIPE_SECRET_KEY: 'sk_test_rolled_key_TailW5',
        STRIPE_API_BASE: sandbox.url,
        STRIPE_WEBHOOK_SECRET: 'whsec_logaudit',
      },
    );
    expect(res.code).toBe(0);
    expect(res.stderr).toContain(
      '! could not read the object from Stripe (Invalid API Key provided: sk_test_[REDACTED]); sending a made-up one',
    );
    expect(res.stderr).not.toContain('ilW5');
  }, 60_000);
});
