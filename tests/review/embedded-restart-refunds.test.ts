/**
 * Embedded mode (npm start with nothing configured): the ledger is a SQLite file under ./data/ that outlives the
 * process, but the Stripe it was written against is the in-process sandbox, which keeps everything in memory. README
 * says of the in-process queue: "unfinished refunds are queued again from the ledger at start". They are, but the
 * sandbox of the new process has never heard of their payment intents, so every one of them ends `failed`: a refund
 * answered 202, still waiting in the in-process queue when the process was stopped cleanly (Ctrl-C), is never made.
 * A clean stop cancels the worker first, so refunds beyond the prefetch, in a retry delay, or accepted while HTTP
 * drains are all left for the next start.
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

  it('makes them at the next start, as README says', async () => {
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
    await first.close(); // Ctrl-C: the refund in flight finishes, the others stay queued in the ledger

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
  }, 60_000);
});
