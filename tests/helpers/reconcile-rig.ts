/**
 * What a reconcile test runs against: a sandbox of its own (only `secret` opens it), a store of the dialect's
 * (SQLite in a temporary folder, or a PostgreSQL schema of its own, dropped after) and a Stripe client of the
 * sandbox's.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { startSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/index.js';
import { createStore, type Store } from '../../src/store/index.js';
import { createStripeClient, type StripeClient } from '../../src/stripe/client.js';
import { PG_URL, skipPostgres } from '../store/harness.js';
import { captureLogger } from './log-capture.js';

/** The stores a reconcile test runs on: SQLite, and PostgreSQL when it is up. */
export const reconcileStores: readonly ('sqlite' | 'postgres')[] = skipPostgres
  ? ['sqlite']
  : ['sqlite', 'postgres'];

export interface ReconcileRig {
  /** The key the sandbox accepts. */
  readonly secret: string;
  /** Set in beforeAll. */
  sandbox: Sandbox;
  store: Store;
  stripe: StripeClient;
}

/**
 * Registers the rig's beforeAll and afterAll in the calling describe. `tag` names the sandbox's key, the temporary
 * folder and the schema; `sandboxOptions` go to the sandbox (its key aside).
 */
export function useReconcileRig(
  dialect: 'sqlite' | 'postgres',
  tag: string,
  sandboxOptions: Omit<SandboxOptions, 'secretKey'> = {},
): ReconcileRig {
  let dir: string | undefined;
  let schema: string | undefined;
  const rig = { secret: `sk_test_${tag}${randomBytes(6).toString('hex')}` } as ReconcileRig;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), `${tag}-`));
    rig.sandbox = await startSandbox({ ...sandboxOptions, secretKey: rig.secret });
    if (dialect === 'postgres') {
      schema = `${tag}_${process.pid}_${randomBytes(4).toString('hex')}`;
      rig.store = await createStore({ url: PG_URL, schema });
    } else rig.store = await createStore({ url: `sqlite:${path.join(dir, 'ledger.db')}` });
    rig.stripe = createStripeClient(
      { secretKey: rig.secret, apiBase: new URL(rig.sandbox.url), timeoutMs: 5_000, maxNetworkRetries: 0 },
      captureLogger().logger,
    );
  });
  afterAll(async () => {
    await rig.store?.close();
    await rig.sandbox?.close();
    if (schema) {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`drop schema if exists "${schema}" cascade`);
      await client.end();
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return rig;
}
