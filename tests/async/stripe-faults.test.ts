/**
 * Done-when 3: Stripe answering POST /v1/refunds with 30% 500s, 10% "processed, then the connection
 * dropped" and 5% 429s. Every refund still succeeds, through the SDK's retries and the worker's
 * delay queues, and the idempotency key keeps the dropped-but-made ones from being made twice.
 */
import { describe, expect, it } from 'vitest';
import { postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import {
  countsOf,
  expectExactlyOnce,
  paidIntents,
  pool,
  postRefundAsync,
  refundOrders,
  retryQueues,
  useCluster,
  waitFor,
} from './support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());

describe.skipIf(!ready)('async refunds against a failing Stripe', () => {
  // Eight attempts, each with the SDK's own two retries: the chance that one refund of 300 never gets
  // through at these rates is far below one in a million.
  const rig = useCluster('faults', { ROLE: 'all', WORKER_MAX_ATTEMPTS: '8' });

  it('all 300 refunds succeed, none twice', async () => {
    const intents = await paidIntents(rig.svc.url, 30, 10_000);
    const orders = refundOrders(rig.tag, intents, 10, 1_000);
    const keys = orders.map((o) => o.request_id);
    await rig.stripe.faults({
      error_rate: 0.3,
      drop_rate: 0.1,
      rate_limit_rate: 0.05,
      match: { method: 'POST', path_prefix: '/v1/refunds' },
    });

    const started = Date.now();
    await pool(orders, 16, (o) => postRefundAsync(rig.svc.url, o));
    const counts = await waitFor(
      () => countsOf(rig.svc, keys),
      (c) => c.succeeded === orders.length,
      90_000,
      250,
    );
    const seconds = (Date.now() - started) / 1000;
    expect(counts).toMatchObject({ succeeded: orders.length, queued: 0, processing: 0, failed: 0 });
    await expectExactlyOnce(rig.stripe, keys, 1_000);

    // The faults were felt: some refunds needed the worker's own retries (beyond the SDK's).
    const rows = await Promise.all(keys.map((k) => rig.svc.deps.store.refunds.get(k)));
    const attempts = rows.map((r) => r?.attempts ?? 0);
    const retried = attempts.filter((n) => n > 1).length;
    expect(retried).toBeGreaterThan(0);
    expect(await rig.peek.depth(rig.topology.deadLetter)).toBe(0);
    for (const q of retryQueues(rig.topology)) expect(await rig.peek.depth(q), q).toBe(0);
    console.info(
      `[async] faults: ${orders.length} refunds succeeded in ${seconds.toFixed(1)} s; ` +
        `${retried} needed worker retries (max ${Math.max(...attempts)} attempts)`,
    );
  }, 120_000);
});
