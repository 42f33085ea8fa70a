/**
 * STRIPE_MAX_RPS: a worker process never asks Stripe for refunds faster than the ceiling. The rate is
 * measured where Stripe would see it: a pass-through HTTP hop in front of the sandbox notes when each
 * POST /v1/refunds arrives. The refunds are queued before the worker starts, so it has a backlog to
 * burst through and this process is idle while the worker runs.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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
  useCluster,
  waitFor,
} from './support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());
const MAX_RPS = 10;

interface Hop {
  url: string;
  /** Arrival times (ms) of POST /v1/refunds. */
  refundPosts: number[];
  /** Arrival times (ms) of every /v1 request (refund lists included). */
  apiCalls: number[];
  close(): Promise<void>;
}

async function passThrough(target: string): Promise<Hop> {
  const to = new URL(target);
  const refundPosts: number[] = [];
  const apiCalls: number[] = [];
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/v1/')) apiCalls.push(performance.now());
    if (req.method === 'POST' && req.url?.startsWith('/v1/refunds')) refundPosts.push(performance.now());
    const upstream = request(
      { host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    refundPosts,
    apiCalls,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The most arrivals inside any window [t, t + 1 s). */
function busiestSecond(times: number[]): number {
  let best = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (j < times.length && times[j]! < times[i]! + 1_000) j++;
    best = Math.max(best, j - i);
  }
  return best;
}

describe.skipIf(!ready)('STRIPE_MAX_RPS', () => {
  let hop: Hop;
  // The retry case's worker waits this long before a retry: one level of its own, whose queue the rig deletes after.
  const RETRY_DELAY_MS = 2000;
  const rig = useCluster(
    'rate',
    {},
    {
      stripeVia: async (stripe) => (hop = await passThrough(stripe.url)),
      extraRetryDelaysMs: [RETRY_DELAY_MS],
    },
  );
  const { tag, topology } = rig;
  /** Request keys of the refunds made so far in this describe (one sandbox for all of them). */
  const made: string[] = [];

  it(`keeps POST /v1/refunds at or under ${MAX_RPS} per second however many are queued`, async () => {
    const intents = await paidIntents(rig.svc.url, 10, 10_000);
    const orders = refundOrders(tag, intents, 5, 1_000);
    const keys = orders.map((o) => o.request_id);
    // Without the ceiling the worker (prefetch 32) would send this backlog in one burst.
    await pool(orders, 25, (o) => postRefundAsync(rig.svc.url, o));
    await waitFor(
      () => rig.peek.depth(topology.requests),
      (n) => n === orders.length,
      10_000,
    );
    const worker = await spawnWorker('worker-rate', { ...rig.env, STRIPE_MAX_RPS: String(MAX_RPS) });
    const counts = await waitFor(
      () => countsOf(rig.svc, keys),
      (c) => c.succeeded === orders.length,
      30_000,
    );
    expect(counts.succeeded).toBe(orders.length);
    expect((await worker.kill('SIGTERM')).code).toBe(0);
    await expectExactlyOnce(rig.stripe, keys, 1_000);
    made.push(...keys);

    const times = hop.refundPosts;
    expect(times).toHaveLength(orders.length);
    const busiest = busiestSecond(times);
    const span = (times.at(-1)! - times[0]!) / 1000;
    const average = (times.length - 1) / span;
    console.info(
      `[async] STRIPE_MAX_RPS=${MAX_RPS}: ${times.length} refund calls over ${span.toFixed(2)} s ` +
        `(${average.toFixed(2)}/s on average), busiest second ${busiest}`,
    );
    // The worker lets calls go 1/MAX_RPS apart; between that moment and Stripe, scheduling jitter can
    // squeeze one more into some 1-second window (typically 11 at 10/s), so two are allowed for. Without
    // the ceiling this backlog arrives at over 40 per second.
    expect(busiest).toBeLessThanOrEqual(MAX_RPS + 2);
    expect(average).toBeLessThanOrEqual(MAX_RPS * 1.05);
  }, 60_000);

  it(`counts a retry's look at Stripe's refunds too: every call to Stripe stays at or under ${MAX_RPS} per second`, async () => {
    const intents = await paidIntents(rig.svc.url, 10, 10_000);
    const orders = refundOrders(`${tag}-retry`, intents, 4, 1_000);
    const keys = orders.map((o) => o.request_id);
    await pool(orders, 25, (o) => postRefundAsync(rig.svc.url, o));
    await waitFor(
      () => rig.peek.depth(topology.requests),
      (n) => n === orders.length,
      10_000,
    );
    // Every first attempt is refused (403, which the worker retries): each refund then goes again, and a
    // retry first lists the payment's refunds at Stripe (a GET) before it sends its POST.
    await rig.stripe.faults({
      permission_error_rate: 1,
      match: { method: 'POST', path_prefix: '/v1/refunds' },
    });
    const worker = await spawnWorker('worker-rate-retry', {
      ...rig.env,
      STRIPE_MAX_RPS: String(MAX_RPS),
      WORKER_RETRY_DELAYS_MS: String(RETRY_DELAY_MS),
    });
    const firstTries = hop.refundPosts.length;
    await waitFor(
      () => Promise.resolve(hop.refundPosts.length - firstTries),
      (n) => n >= orders.length,
      30_000,
    );
    await rig.stripe.faults({});
    const from = hop.apiCalls.length;
    const counts = await waitFor(
      () => countsOf(rig.svc, keys),
      (c) => c.succeeded === orders.length,
      45_000,
    );
    expect(counts.succeeded).toBe(orders.length);
    expect((await worker.kill('SIGTERM')).code).toBe(0);
    await expectExactlyOnce(rig.stripe, [...made, ...keys], 1_000);

    const retries = hop.apiCalls.slice(from);
    // At least a list and a POST for each refund's second attempt.
    expect(retries.length).toBeGreaterThanOrEqual(2 * orders.length);
    const busiest = busiestSecond(retries);
    console.info(
      `[async] STRIPE_MAX_RPS=${MAX_RPS}, retries: ${retries.length} calls, busiest second ${busiest}`,
    );
    expect(busiest).toBeLessThanOrEqual(MAX_RPS + 2);
  }, 120_000);
});
