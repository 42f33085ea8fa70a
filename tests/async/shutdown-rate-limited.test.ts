/**
 * SIGTERM to a worker whose deliveries wait at the Stripe rate limiter (STRIPE_MAX_RPS): they are given back to
 * RabbitMQ at once instead of holding the shutdown for the whole drain period while, one token at a time, more
 * refunds are sent; a refund given back has not begun an attempt (still `queued`, no attempt counted), and the
 * next worker makes every refund exactly once.
 */
import { describe, expect, it } from 'vitest';
import { getJson } from '../helpers/http.js';
import { postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import {
  countsOf,
  expectExactlyOnce,
  ledgerRows,
  paidIntents,
  pool,
  postRefundAsync,
  refundOrders,
  spawnWorker,
  useCluster,
  waitFor,
} from './support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());

describe.skipIf(!ready)('SIGTERM with deliveries waiting at STRIPE_MAX_RPS', () => {
  const rig = useCluster('ratestop');
  const { tag, topology } = rig;

  it('gives the waiting deliveries back at once, without an attempt, and the next worker makes each once', async () => {
    const intents = await paidIntents(rig.svc.url, 6, 10_000);
    // 30 refunds at one Stripe call per second: far more than the 20 s drain period would send.
    const orders = refundOrders(tag, intents, 5, 1_000);
    const keys = orders.map((o) => o.request_id);
    await pool(orders, 10, (o) => postRefundAsync(rig.svc.url, o));
    const queued = await waitFor(
      () => rig.peek.depth(topology.requests),
      (n) => n === orders.length,
      10_000,
    );
    expect(queued).toBe(orders.length);

    const slow = await spawnWorker('worker-slow', { ...rig.env, STRIPE_MAX_RPS: '1' });
    const started = await waitFor(
      () => rig.stripe.refundsByRequest(),
      (made) => made.size >= 2,
      15_000,
    );
    const madeAtSignal = started.size;
    expect(madeAtSignal).toBeGreaterThanOrEqual(2);
    const signalledAt = Date.now();
    expect((await slow.kill('SIGTERM')).code).toBe(0);
    const stopMs = Date.now() - signalledAt;

    // Once signalled, the worker sends nothing more to Stripe than a call it had a token for already (at one
    // token a second, one; allow for one granted between the count above and the signal).
    const made = await rig.stripe.refundsByRequest();
    expect(made.size).toBeLessThanOrEqual(madeAtSignal + 2);
    expect(
      slow
        .logs()
        .filter(
          (l) =>
            l.msg === 'handlers still running after the drain timeout; their messages will be redelivered',
        ),
    ).toEqual([]);

    // Every refund Stripe has not made is back on the queue, waiting as it was accepted: queued, no attempt.
    const left = keys.filter((k) => !made.has(k));
    expect(left.length).toBeGreaterThan(0);
    expect(await rig.peek.depth(topology.requests)).toBe(left.length);
    const rows = await ledgerRows(rig.svc, left);
    expect(rows.map((r) => [r.requestId, r.status, r.attempts])).toEqual(left.map((k) => [k, 'queued', 0]));
    const status = await getJson(`${rig.svc.url}/refund-status/${left[0]}`);
    expect(status.json).toMatchObject({ status: 'queued', refund_id: null });

    console.info(
      `[async] SIGTERM at STRIPE_MAX_RPS=1: exit after ${stopMs} ms, ${made.size - madeAtSignal} refund(s) made ` +
        `after the signal, ${left.length} given back`,
    );

    const next = await spawnWorker('worker-next', rig.env);
    const counts = await waitFor(
      () => countsOf(rig.svc, keys),
      (c) => c.succeeded === orders.length,
      30_000,
    );
    expect(counts.succeeded).toBe(orders.length);
    expect((await next.kill('SIGTERM')).code).toBe(0);
    await expectExactlyOnce(rig.stripe, keys, 1_000);
  }, 90_000);
});
