/**
 * Done-when 1: 1,000 queued refunds while the worker PROCESS is SIGKILLed three times and restarted.
 * Stripe answers slowly on purpose, so every kill lands while refunds are in flight at Stripe: the
 * refund exists there but the ledger has not heard. The restarted worker must finish each one with
 * the same idempotency key, so nothing is refunded twice and nothing is lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import {
  clusterEnv,
  expectExactlyOnce,
  killAllWorkers,
  paidIntents,
  peekRabbit,
  pgSchema,
  pool,
  postRefundAsync,
  prefixedTopology,
  refundOrders,
  retryQueues,
  spawnWorker,
  startInProcess,
  startStripe,
  statusCounts,
  uniqueTag,
  waitFor,
  type InProcessService,
  type PgSchema,
  type RabbitPeek,
  type StripeStandIn,
} from './support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());
const TOTAL = 1_000;

describe.skipIf(!ready)('worker killed with SIGKILL during 1,000 async refunds', () => {
  const tag = uniqueTag('crash');
  const topology = prefixedTopology(tag);
  let stripe: StripeStandIn;
  let db: PgSchema;
  let api: InProcessService;
  let peek: RabbitPeek;
  let env: Record<string, string>;

  beforeAll(async () => {
    stripe = await startStripe();
    db = pgSchema(tag);
    env = clusterEnv(stripe, db, tag, { WORKER_PREFETCH: '32' });
    api = await startInProcess({ env, db, topology });
    peek = await peekRabbit();
  });

  afterAll(async () => {
    await killAllWorkers();
    await api?.close();
    await peek?.deleteAll(topology);
    await peek?.close();
    await db?.drop();
    await stripe?.close();
  });

  it('refunds each request exactly once, leaves every ledger row succeeded and every queue empty', async () => {
    const intents = await paidIntents(api.url, 100, 10_000);
    const orders = refundOrders(tag, intents, TOTAL / intents.length, 1_000);
    await stripe.faults({ latency_ms: 40, match: { method: 'POST', path_prefix: '/v1/refunds' } });

    let worker = await spawnWorker('worker-1', env);
    const started = Date.now();
    const posting = pool(orders, 16, (o) => postRefundAsync(api.url, o));
    const kills: { succeeded: number; processing: number }[] = [];
    for (const [i, threshold] of [150, 400, 650].entries()) {
      const before = await waitFor(
        () => statusCounts(api),
        (c) => c.succeeded >= threshold,
        60_000,
        25,
      );
      expect(before.succeeded).toBeGreaterThanOrEqual(threshold);
      await worker.kill('SIGKILL');
      kills.push({ succeeded: before.succeeded, processing: before.processing });
      worker = await spawnWorker(`worker-${i + 2}`, env);
    }
    const answers = await posting;
    expect(answers.every((a) => a.success === true && a.status === 'queued')).toBe(true);

    const final = await waitFor(
      () => statusCounts(api),
      (c) => c.succeeded === TOTAL,
      60_000,
    );
    const drainSeconds = (Date.now() - started) / 1000;
    expect(final).toMatchObject({ succeeded: TOTAL, queued: 0, processing: 0, failed: 0 });
    const keys = orders.map((o) => o.request_id);
    const byRequest = await expectExactlyOnce(stripe, keys, 1_000);

    // The kills hit refunds that were in flight: some needed a second attempt after a restart.
    const rows = await Promise.all(keys.map((k) => api.deps.store.refunds.get(k)));
    const retried = rows.filter((r) => (r?.attempts ?? 0) > 1).length;

    // A graceful stop hands back anything unacknowledged, so empty queues now mean no message is left.
    expect((await worker.kill('SIGTERM')).code).toBe(0);
    for (const queue of [topology.requests, topology.deadLetter, ...retryQueues(topology)])
      expect(await peek.depth(queue), queue).toBe(0);

    // Every outcome reached stripe_refund_responses, including those written just before a kill.
    await waitFor(
      () => api.deps.store.outbox.pendingCount(),
      (n) => n === 0,
      40_000,
    );
    const outcomes = (await peek.drain(topology.responses)).map(
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
