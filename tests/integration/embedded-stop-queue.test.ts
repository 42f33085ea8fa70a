/**
 * Embedded mode (npm start with nothing configured): the ledger is a SQLite file under ./data/ that outlives the
 * process, but the Stripe it was written against is the in-process sandbox, which keeps everything in memory. A clean
 * stop (Ctrl-C) cancelled the worker first, leaving the refunds still in the in-process queue (past the prefetch, or
 * accepted while HTTP drained) to the next start. README says they are queued again from the ledger there, and they
 * were, but that process's sandbox has never heard of their payment intents: every one ended `failed`
 * (resource_missing), though it had been answered 202. A stop in embedded mode now lets the worker make the refunds
 * accepted before it stops consuming (for up to 10 s).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { startService, type RunningService } from '../../src/service.js';
import { paidIntent, postJson } from '../helpers/http.js';
import { captureLogger } from '../helpers/log-capture.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

describe('embedded mode, stopped with refunds still in its in-process queue', () => {
  let first: TestService | undefined;
  let next: RunningService | undefined;

  afterAll(async () => {
    await next?.close();
    await first?.stop();
  });

  it('makes them before it stops, so none ends failed at the next start', async () => {
    first = await startTestService('sqlite', { API_AUTH: 'off', WORKER_PREFETCH: '1' });
    expect(first.deps.sandbox).not.toBeNull();
    const intent = await paidIntent(first.url, 5000);
    // Stripe slow to answer refunds: one at a time is made, the others wait in the in-process queue.
    await first.faults({ latency_ms: 1_500, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    const keys = [1, 2, 3].map((i) => `embedded-restart-${Date.now()}-${i}`);
    for (const key of keys) {
      const r = await postJson(`${first.url}/refund-async`, {
        payment_intent_id: intent,
        amount: 100,
        request_id: key,
      });
      expect(r.status, r.text).toBe(202);
    }
    await first.close(); // Ctrl-C

    const { logger } = captureLogger('info');
    next = await startService(
      loadConfig({
        NODE_ENV: 'test',
        PORT: '0',
        HOST: '127.0.0.1',
        API_AUTH: 'off',
        DATABASE_URL: first.deps.config.database.url,
      }),
      logger,
    );
    const statuses = await eventually(
      async () =>
        Promise.all(keys.map(async (k) => (await next!.deps.store.refunds.get(k))?.status ?? 'missing')),
      (s) => s.every((x) => ['succeeded', 'failed', 'canceled'].includes(x)),
      15_000,
    );
    const rows = await Promise.all(keys.map((k) => next!.deps.store.refunds.get(k)));
    expect(
      rows.map((r) => `${r?.status} ${r?.failureReason ?? ''}`.trim()),
      JSON.stringify(statuses),
    ).toEqual(keys.map(() => 'succeeded'));
    // What README says of the payments made before a restart.
    const before = await fetch(`${next.url}/payment-intent/${intent}`);
    expect(before.status).toBe(404);
  }, 60_000);
});
