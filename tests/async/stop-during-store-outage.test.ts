/**
 * A worker stopped while a delivery waits for the database (PostgreSQL failing over, the worker's pod restarted
 * meanwhile, as an orchestrator does to a process whose readiness fails): README promises that "an outage spends
 * neither the worker's attempts nor RabbitMQ's delivery limit". The delivery goes back to the queue as it came, as
 * one waiting for the rate limiter at a stop does, not as a failed delivery: were each stop during an outage counted,
 * a few restarts would dead-letter the refund (`delivery_limit`) although nothing was wrong with it.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createRateLimiter, DEFAULT_DELIVERY_LIMIT } from '../../src/queue/index.js';
import { startRefundWorker } from '../../src/refunds/worker.js';
import { getJson } from '../helpers/http.js';
import { captureLogger } from '../helpers/log-capture.js';
import { POSTGRES_URL, postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import { gateRefundCreate } from '../helpers/stripe-gate.js';
import {
  expectExactlyOnce,
  paidIntents,
  postRefundAsync,
  retryQueues,
  useCluster,
  waitFor,
} from './support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());

describe.skipIf(!ready)('a worker stopped while the database is away', () => {
  // The API in this process writes and publishes; the test runs the worker itself, to stop it mid-outage.
  // A statement blocked this long counts as the database not answering.
  const rig = useCluster('stop_outage', { DATABASE_TIMEOUT_MS: '400' });

  function worker(lines?: string[]) {
    const { logger, lines: own } = captureLogger('info');
    return {
      lines: lines ?? own,
      started: startRefundWorker({
        broker: rig.svc.deps.broker,
        refunds: rig.svc.deps.refunds,
        logger,
        queue: rig.topology.requests,
        prefetch: 1,
        maxAttempts: 3,
        deliveryLimit: DEFAULT_DELIVERY_LIMIT,
        limiter: createRateLimiter(null),
        crashBackoffMs: 50,
        storePing: () => rig.svc.deps.store.ping(),
      }),
    };
  }

  it('gives the message back as it came: no failed delivery counted, and the refund is made after', async () => {
    const [pi] = await paidIntents(rig.svc.url, 1, 5_000);
    const requestId = `${rig.tag}-held`;
    const first = worker();
    const consumer = await first.started;
    const gate = gateRefundCreate(rig.svc.deps.stripe);
    const holder = new pg.Client({ connectionString: POSTGRES_URL });
    await holder.connect();
    let back: { body: string; messageId: string; headers: Record<string, unknown> }[];
    try {
      await holder.query(`SET search_path TO "${rig.db.schema}"`);
      await holder.query('BEGIN');
      await postRefundAsync(rig.svc.url, { payment_intent_id: pi!, amount: 700, request_id: requestId });
      await gate.entered; // the worker is at Stripe; recording its answer will wait for the refund row
      await holder.query('SELECT 1 FROM refunds WHERE request_id = $1 FOR UPDATE', [requestId]);
      gate.release();
      const waiting = await waitFor(
        async () => first.lines.some((l) => l.includes('store unavailable; the refund waits for it')),
        (seen) => seen,
        10_000,
      );
      expect(waiting).toBe(true);

      await consumer.cancel(); // the stop, with the database still away
      back = await rig.peek.drain(rig.topology.requests);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
      gate.restore();
    }

    // One message back in the queue, the one the relay published, with no failed delivery to its name.
    expect(back).toHaveLength(1);
    expect(JSON.parse(back[0]!.body)).toEqual({ request_key: expect.stringContaining(requestId) as string });
    expect(back[0]!.headers['x-delivery-count']).toBeUndefined();
    expect(back[0]!.headers['x-prior-deliveries']).toBeUndefined();
    expect(first.lines.filter((l) => l.includes('refund worker failed on a message'))).toEqual([]);
    for (const q of [rig.topology.deadLetter, ...retryQueues(rig.topology)])
      expect(await rig.peek.depth(q), q).toBe(0);

    // Put back (the drain took it) and taken by the next worker: Stripe made the refund before the stop, and the
    // next attempt finds it there rather than making a second one.
    await rig.peek.publishRaw(rig.topology.requests, Buffer.from(back[0]!.body), back[0]!.messageId);
    const next = await worker().started;
    try {
      const done = await waitFor(
        () => getJson(`${rig.svc.url}/refund-status/${requestId}`),
        (r) => r.json.status === 'succeeded',
        20_000,
      );
      expect(done.json).toMatchObject({ status: 'succeeded', amount: 700 });
    } finally {
      await next.cancel();
    }
    await expectExactlyOnce(rig.stripe, [requestId], 700);
  }, 60_000);
});
