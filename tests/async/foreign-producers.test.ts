/**
 * Refund requests other producers put straight on `stripe_refund_requests`, as clients written for the Python
 * service may: with their library's properties (no message_id, no headers, content_type text/plain, not
 * persistent, a priority, an expiration), a body with extra fields or a huge one, the same request twice, the
 * Python service's own request shape, bytes that are not UTF-8. A real worker process consumes them while Stripe
 * answers every refund 500 for a while, so the id-less messages go through the delay queues. Each request is
 * refunded once, for the ledger's amount; what cannot be a refund is dead-lettered with its reason; nothing is left
 * circulating; the outcomes carry the fields the Python service's `GET /refund-status` had; the worker goes on.
 */
import { connect } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { RABBITMQ_URL, postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import {
  countsOf,
  expectExactlyOnce,
  ledgerRows,
  paidIntents,
  pool,
  postRefundAsync,
  refundOrders,
  retryQueues,
  spawnWorker,
  useCluster,
  waitFor,
} from './support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());

/** Publishes as another client library would: only the properties given (none: pika's basic_publish default). */
async function publishForeign(
  queue: string,
  messages: { content: Buffer; props?: Record<string, unknown> }[],
): Promise<void> {
  const model = await connect(RABBITMQ_URL);
  try {
    const ch = await model.createConfirmChannel();
    for (const m of messages) ch.sendToQueue(queue, m.content, m.props ?? {});
    await ch.waitForConfirms();
    await ch.close();
  } finally {
    await model.close();
  }
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

describe.skipIf(!ready)('refund requests other producers publish on the requests queue', () => {
  // The API alone in this process (the rig's default role): its relay queues the accepted refunds, which the test takes off the queue and publishes
  // again as other producers would, before a worker process starts. Attempts enough to outlast the failing spell.
  const rig = useCluster('foreign', { WORKER_MAX_ATTEMPTS: '30' });

  it('refunds each request once, dead-letters what is no refund with its reason, and leaves nothing circulating', async () => {
    const intents = await paidIntents(rig.svc.url, 4, 10_000);
    const orders = refundOrders(rig.tag, intents, 3, 1_000);
    const keys = orders.map((o) => o.request_id);
    await pool(orders, 8, (o) => postRefundAsync(rig.svc.url, o));
    // The relay's own messages, named `<key>#accept`, taken off: only the foreign copies below reach the worker.
    await waitFor(
      () => rig.peek.depth(rig.topology.requests),
      (n) => n === orders.length,
      15_000,
    );
    const own = await rig.peek.drain(rig.topology.requests);
    expect(own.map((m) => m.messageId).sort()).toEqual(keys.map((k) => `${k}#accept`).sort());

    const variants: Record<string, unknown>[] = [
      {},
      { contentType: 'text/plain' },
      { deliveryMode: 1, priority: 7 },
      { expiration: '600000', deliveryMode: 2 },
      { contentType: 'application/json', headers: {} },
    ];
    const messages = orders.flatMap((o, i) => {
      // Extra fields a producer may send, which must not change what is refunded (the ledger's amount).
      const body = json({ request_key: o.request_id, amount: 999_999, payment_intent_id: intents[0] });
      const props = variants[i % variants.length]!;
      // Every other request twice, as a producer retrying its own publish would.
      return i % 2 === 0
        ? [
            { content: body, props },
            { content: body, props },
          ]
        : [{ content: body, props }];
    });
    // A huge body for one request (its key first, and padding).
    messages.push({
      content: json({ request_key: keys[0], padding: 'x'.repeat(5 * 1024 * 1024) }),
      props: {},
    });
    const pythonShape = { payment_intent_id: intents[1], amount: 500, request_id: `${rig.tag}-python` };
    const notUtf8 = Buffer.concat([
      Buffer.from(`{"request_key":"${keys[1]}`),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}'),
    ]);
    messages.push({ content: json(pythonShape), props: { contentType: 'application/json' } });
    messages.push({ content: notUtf8, props: {} });

    // Stripe answers every refund 500 (in front of its idempotency layer) until each refund has gone through the
    // delay queues at least once.
    await rig.stripe.faults({ error_rate: 1, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    await publishForeign(rig.topology.requests, messages);
    const worker = await spawnWorker('worker-foreign', rig.env);
    await waitFor(
      () => ledgerRows(rig.svc, keys),
      (rows) => rows.length === keys.length && rows.every((r) => r.attempts >= 2),
      60_000,
      100,
    );
    await rig.stripe.faults({});

    const counts = await waitFor(
      () => countsOf(rig.svc, keys),
      (c) => c.succeeded === keys.length,
      60_000,
      250,
    );
    expect(counts).toMatchObject({ succeeded: keys.length, queued: 0, processing: 0, failed: 0 });
    // Once each, for the ledger's 1000, not the 999999 the messages named; nothing for the Python-shaped request.
    const byRequest = await expectExactlyOnce(rig.stripe, keys, 1_000);

    // What is no refund of the ledger's is in the dead-letter queue, with why; no copy of a real request is.
    await waitFor(
      () => rig.peek.depth(rig.topology.deadLetter),
      (n) => n >= 2,
      30_000,
      100,
    );
    const dead = await rig.peek.drain(rig.topology.deadLetter);
    expect(dead.map((m) => [JSON.parse(m.body) as unknown, m.headers['x-dead-letter-reason']])).toEqual(
      expect.arrayContaining([
        [pythonShape, 'malformed message: no request_key'],
        [{ request_key: `${keys[1]}\ufffd\ufffd` }, 'unknown refund request'],
      ]),
    );
    expect(dead).toHaveLength(2);
    for (const m of dead) expect(m.messageId).not.toBe('');

    // Nothing left circulating.
    for (const q of [rig.topology.requests, ...retryQueues(rig.topology)])
      expect(await rig.peek.depth(q), q).toBe(0);

    // Each refund's outcome carries what the Python service's GET /refund-status had.
    const outcomes: Record<string, unknown>[] = [];
    await waitFor(
      async () => {
        const taken = await rig.peek.drain(rig.topology.responses);
        outcomes.push(...taken.map((m) => JSON.parse(m.body) as Record<string, unknown>));
        return outcomes.filter((o) => o.status === 'succeeded').length;
      },
      (n) => n >= keys.length,
      30_000,
      250,
    );
    for (const key of keys) {
      const succeeded = outcomes.filter((o) => o.request_id === key && o.status === 'succeeded');
      expect(succeeded, key).toHaveLength(1);
      expect(succeeded[0]).toMatchObject({
        success: true,
        request_id: key,
        refund_id: byRequest.get(key)![0]!.id,
        status: 'succeeded',
        amount: 1_000,
      });
    }

    // The worker is still up and takes the next refund.
    const next = { request_id: `${rig.tag}-next`, payment_intent_id: intents[3]!, amount: 1_000 };
    await postRefundAsync(rig.svc.url, next);
    const after = await waitFor(
      () => countsOf(rig.svc, [next.request_id]),
      (c) => c.succeeded === 1,
      30_000,
      100,
    );
    expect(after.succeeded).toBe(1);
    expect(worker.child.exitCode).toBeNull();
  }, 180_000);
});
