/**
 * The reconcile tool run from cron over a rolling window (`--since 24h`): a refund still not final must be
 * reported on every run for as long as it stays so, not only on the runs whose window holds its creation.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reconcile } from '../../src/reconcile/index.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { createStore, type Store } from '../../src/store/index.js';
import { createStripeClient, type StripeClient } from '../../src/stripe/client.js';
import { captureLogger } from '../helpers/log-capture.js';

const HOUR = 3_600_000;

describe('reconcile over a rolling window', () => {
  let dir: string;
  let sandbox: Sandbox;
  let store: Store;
  let stripe: StripeClient;
  const secret = 'sk_test_lifecyclereconcile';

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'lifecycle-reconcile-'));
    sandbox = await startSandbox({ secretKey: secret });
    store = await createStore({ url: `sqlite:${path.join(dir, 'ledger.db')}` });
    stripe = createStripeClient(
      { secretKey: secret, apiBase: new URL(sandbox.url), timeoutMs: 5_000, maxNetworkRetries: 0 },
      captureLogger().logger,
    );
  });
  afterAll(async () => {
    await store?.close();
    await sandbox?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports a refund stuck since before the window, and not one that is final or still young', async () => {
    const refund = (requestId: string, status: 'queued' | 'processing' | 'succeeded', ageMs: number) =>
      store.refunds.insert({
        requestId,
        paymentIntentId: 'pi_lifecycle',
        amount: 100,
        status,
        mode: 'async',
        createdAt: new Date(Date.now() - ageMs),
      });
    await refund('stuck-two-days', 'queued', 48 * HOUR);
    await refund('stuck-in-window', 'processing', 3 * HOUR);
    await refund('done-long-ago', 'succeeded', 72 * HOUR);
    await refund('young', 'queued', 60_000);

    // Yesterday's run saw the first one in its window; today's must still report it.
    const report = await reconcile({ store, stripe, since: new Date(Date.now() - 24 * HOUR) });
    expect(report.drifts.map((d) => [d.kind, d.id]).sort()).toEqual([
      ['refund_stuck', 'stuck-in-window'],
      ['refund_stuck', 'stuck-two-days'],
    ]);
    expect(report.drifts.find((d) => d.id === 'stuck-two-days')?.detail).toMatch(/^queued since /);
  });
});
