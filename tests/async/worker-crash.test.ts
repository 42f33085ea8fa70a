/**
 * Done-when 1: 1,000 queued refunds while the worker PROCESS is SIGKILLed three times and restarted.
 * Stripe answers slowly on purpose, so every kill lands while refunds are in flight at Stripe: the
 * refund exists there but the ledger has not heard. The restarted worker must finish each one with
 * the same idempotency key, so nothing is refunded twice and nothing is lost.
 */
import { describe, expect, it } from 'vitest';
import { postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import {
  expectExactlyOnce,
  paidIntents,
  pool,
  postRefundAsync,
  refundOrders,
  retryQueues,
  spawnWorker,
  statusCounts,
  useCluster,
  waitFor,
} from './support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());
const TOTAL = 1_000;

describe.skipIf(!ready)('worker killed with SIGKILL during 1,000 async refunds', () => {
  const rig = useCluster('crash', { WORKER_PREFETCH: '32' });

  it('refunds each request exactly once, leaves every ledger row succeeded and every queue empty', async () => {
    const intents = await paidIntents(rig.svc.url, 100, 10_000);
    const orders = refundOrders(rig.tag, intents, TOTAL / intents.length, 1_000);
    await rig.stripe.faults({ latency_ms: 40, match: { method: 'POST', path_prefix: '/v1/refunds' } });

    let worker = await spawnWorker('worker-1', rig.env);
    const started = Date.now();
    const posting = pool(orders, 16, (o) => postRefundAsync(rig.svc.url, o));
    const kills: { succeeded: number; processing: number }[] = [];
    for (const [i, threshold] of [150, 400, 650].entries()) {
      const before = await waitFor(
        () => statusCounts(rig.svc),
        (c) => c.succeeded >= threshold,
        60_000,
        25,
      );
      expect(before.succeeded).toBeGreaterThanOrEqual(threshold);
      await worker.kill('SIGKILL');
      kills.push({ succeeded: before.succeeded, processing: before.processing });
      worker = await spawnWorker(`worker-${i + 2}`, rig.env);
    }
    const answers = await posting;
    expect(answers.every((a) => a.success === true && a.status === 'queued')).toBe(true);

    const final = await waitFor(
      () => statusCounts(rig.svc),
      (c) => c.succeeded === TOTAL,
      60_000,
    );
    const drainSeconds = (Date.now() - started) / 1000;
    expect(final).toMatchObject({ succeeded: TOTAL, queued: 0, processing: 0, failed: 0 });
    const keys = orders.map((o) => o.request_id);
    const byRequest = await expectExactlyOnce(rig.stripe, keys, 1_000);

    // The kills hit refunds that were in flight: some needed a second attempt after a restart.
    const rows = await Promise.all(keys.map((k) => rig.svc.deps.store.refunds.get(k)));
    const retried = rows.filter((r) => (r?.attempts ?? 0) > 1).length;

    // A graceful stop hands back anything unacknowledged, so empty queues now mean no message is left.
    expect((await worker.kill('SIGTERM')).code).toBe(0);
    for (const queue of [rig.topology.requests, rig.topology.deadLetter, ...retryQueues(rig.topology)])
      expect(await rig.peek.depth(queue), queue).toBe(0);

    // Every outcome reached stripe_refund_responses, including those written just before a kill.
    await waitFor(
      () => rig.svc.deps.store.outbox.pendingCount(),
      (n) => n === 0,
      40_000,
    );
    const outcomes = (await rig.peek.drain(rig.topology.responses)).map(
      (m) => JSON.parse(m.body) as { request_id: string; status: string; refund_id: string },
    );
    const stripeIds = new Map([...byRequest].map(([k, list]) => [k, list[0]!.id]));
    const succeeded = new Map(outcomes.filter((o) => o.status === 'succeeded').map((o) => [o.request_id, o]));
    expect(keys.filter((k) => succeeded.get(k)?.refund_id !== stripeIds.get(k))).toEqual([]);

    console.info(
      `[async] crash test: ${TOTAL} refunds in ${drainSeconds.toFixed(1)} s with 3 SIGKILLs ` +
        `(${(TOTAL / drainSeconds).toFixed(0)}/s incl. restarts); kills at ${JSON.stringify(kills)}; ` +
        `${retried} refunds re-attempted after a kill`,
    );
    expect(retried).toBeGreaterThan(0);
  }, 180_000);
});
