/**
 * Workers as their own processes (ROLE=worker): two share the queue and together refund every request
 * exactly once (done-when 6), and SIGTERM mid-stream lets in-flight refunds finish, loses nothing and
 * leaves the rest in the queue for the next worker.
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
  spawnWorker,
  statusCounts,
  useCluster,
  waitFor,
} from './support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());
const REFUNDS_PATH = { method: 'POST', path_prefix: '/v1/refunds' };

describe.skipIf(!ready)('refund worker processes', () => {
  const rig = useCluster('procs', {});
  /** Every request key sent so far: the sandbox must hold exactly one refund for each, nothing else. */
  const sent: string[] = [];

  it('two workers share the queue and together refund each request exactly once', async () => {
    await rig.stripe.faults({ latency_ms: 40, match: REFUNDS_PATH });
    const [a, b] = await Promise.all([spawnWorker('worker-a', rig.env), spawnWorker('worker-b', rig.env)]);
    const intents = await paidIntents(rig.svc.url, 40, 10_000);
    const orders = refundOrders(`${rig.tag}-pair`, intents, 10, 1_000);
    sent.push(...orders.map((o) => o.request_id));

    const started = Date.now();
    await pool(orders, 24, (o) => postRefundAsync(rig.svc.url, o));
    const acceptedIn = (Date.now() - started) / 1000;
    const counts = await waitFor(
      () => statusCounts(rig.svc),
      (c) => c.succeeded === orders.length,
      60_000,
      25,
    );
    const doneIn = (Date.now() - started) / 1000;
    expect(counts).toMatchObject({ succeeded: orders.length, queued: 0, processing: 0, failed: 0 });
    await expectExactlyOnce(rig.stripe, sent, 1_000);

    expect([(await a.kill('SIGTERM')).code, (await b.kill('SIGTERM')).code]).toEqual([0, 0]);
    const made = [a.refundsMade(), b.refundsMade()];
    expect(made[0]).toBeGreaterThan(0);
    expect(made[1]).toBeGreaterThan(0);
    expect(made[0]! + made[1]!).toBe(orders.length);
    expect(await rig.peek.depth(rig.topology.requests)).toBe(0);
    console.info(
      `[async] two workers: ${orders.length} refunds accepted in ${acceptedIn.toFixed(1)} s ` +
        `(${(orders.length / acceptedIn).toFixed(0)}/s), all refunded ${doneIn.toFixed(1)} s after the first ` +
        `request (${(orders.length / doneIn).toFixed(0)}/s); split ${made.join(' / ')}`,
    );
  }, 120_000);

  it('one worker drains a backlog of 500 queued refunds, each exactly once', async () => {
    await rig.stripe.faults({});
    const intents = await paidIntents(rig.svc.url, 50, 10_000);
    const orders = refundOrders(`${rig.tag}-backlog`, intents, 10, 1_000);
    const keys = orders.map((o) => o.request_id);
    sent.push(...keys);
    await pool(orders, 24, (o) => postRefundAsync(rig.svc.url, o));
    await waitFor(
      () => rig.peek.depth(rig.topology.requests),
      (n) => n === orders.length,
      20_000,
    );

    // Polled with one cheap query over the whole ledger, so the measuring does not slow the worker down.
    const before = (await statusCounts(rig.svc)).succeeded;
    const worker = await spawnWorker('worker-backlog', rig.env);
    const started = Date.now();
    await waitFor(
      () => statusCounts(rig.svc),
      (c) => c.succeeded === before + orders.length,
      60_000,
      50,
    );
    const seconds = (Date.now() - started) / 1000;
    const counts = await countsOf(rig.svc, keys);
    expect(counts).toMatchObject({ succeeded: orders.length, queued: 0, processing: 0, failed: 0 });
    await expectExactlyOnce(rig.stripe, sent, 1_000);
    expect((await worker.kill('SIGTERM')).code).toBe(0);
    console.info(
      `[async] backlog: one worker (prefetch 32, PostgreSQL, sandbox without added latency) drained ` +
        `${orders.length} refunds in ${seconds.toFixed(1)} s (${(orders.length / seconds).toFixed(0)}/s)`,
    );
  }, 120_000);

  it('SIGTERM mid-stream: in-flight refunds finish, the rest wait in the queue, nothing is lost', async () => {
    // Slow enough that a full prefetch window is always in flight when the signal lands.
    await rig.stripe.faults({ latency_ms: 400, match: REFUNDS_PATH });
    const intents = await paidIntents(rig.svc.url, 12, 10_000);
    const orders = refundOrders(`${rig.tag}-term`, intents, 10, 1_000);
    const keys = orders.map((o) => o.request_id);
    sent.push(...keys);
    await pool(orders, 24, (o) => postRefundAsync(rig.svc.url, o));

    const worker = await spawnWorker('worker-term', { ...rig.env, WORKER_PREFETCH: '8' });
    await waitFor(
      () => countsOf(rig.svc, keys),
      (c) => c.succeeded >= 16,
      30_000,
      20,
    );
    const exit = await worker.kill('SIGTERM');
    expect(exit.code).toBe(0);

    const logs = worker.logs();
    const stopAt = logs.findIndex((l) => l.msg === 'shutting down');
    expect(stopAt).toBeGreaterThan(-1);
    expect(logs.some((l) => l.msg === 'stopped cleanly')).toBe(true);
    const finishedWhileStopping = logs.slice(stopAt).filter((l) => l.msg === 'queued refund made').length;
    expect(finishedWhileStopping).toBeGreaterThan(0);

    // Nothing half-done: every refund Stripe made is recorded, none is stuck in processing, and every
    // refund not made yet still has its message in the queue.
    const after = await countsOf(rig.svc, keys);
    expect(after.processing).toBe(0);
    expect(after.succeeded + after.queued).toBe(orders.length);
    expect(after.queued).toBeGreaterThan(0);
    const made = [...(await rig.stripe.refundsByRequest()).keys()].filter((k) =>
      k.startsWith(`${rig.tag}-term`),
    );
    expect(made.length).toBe(after.succeeded);
    expect(await rig.peek.depth(rig.topology.requests)).toBe(after.queued);

    await rig.stripe.faults({ latency_ms: 20, match: REFUNDS_PATH });
    const next = await spawnWorker('worker-next', rig.env);
    const final = await waitFor(
      () => countsOf(rig.svc, keys),
      (c) => c.succeeded === orders.length,
      30_000,
    );
    expect(final).toMatchObject({ succeeded: orders.length, queued: 0, processing: 0, failed: 0 });
    await expectExactlyOnce(rig.stripe, sent, 1_000);
    expect((await next.kill('SIGTERM')).code).toBe(0);
    console.info(
      `[async] SIGTERM: ${finishedWhileStopping} in-flight refunds finished after the signal; ` +
        `${after.queued} waited in the queue for the next worker`,
    );
  }, 120_000);
});
