/**
 * The connection the worker consumes on is lost while a refund's call to Stripe is in flight. RabbitMQ takes the
 * unacked message back and hands it out again on the new connection while the first handler, on the old one, is
 * still waiting for Stripe: the same refund is then in this process twice at once. The promises still hold: one
 * refund at Stripe, one outcome message, the request acked (nothing left in the work, delay or dead-letter queues),
 * and the first handler's ack, on a channel that no longer exists, neither crashes the worker nor settles a delivery
 * of the new channel.
 */
import { describe, expect, it } from 'vitest';
import { getJson } from '../helpers/http.js';
import { postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import { gateRefundCreate } from '../helpers/stripe-gate.js';
import { closeConnectionsNamed, rabbitctl } from '../queue/support/rabbit.js';
import {
  expectExactlyOnce,
  paidIntents,
  postRefundAsync,
  retryQueues,
  useCluster,
  waitFor,
} from './support/harness.js';

async function ctlUsable(): Promise<boolean> {
  try {
    await rabbitctl('status');
    return true;
  } catch (err) {
    if (process.env.CI) throw err;
    console.warn(`\n!!! SKIPPING consume-drop tests: rabbitmqctl unusable: ${(err as Error).message} !!!\n`);
    return false;
  }
}

/** Unacked messages of a queue and how many consumers it has, as RabbitMQ sees them now. */
async function queueState(queue: string): Promise<{ unacked: number; consumers: number } | null> {
  const out = await rabbitctl(
    'list_queues',
    'name',
    'messages_unacknowledged',
    'consumers',
    '--formatter',
    'json',
  );
  const row = (
    JSON.parse(out) as { name: string; messages_unacknowledged: number; consumers: number }[]
  ).find((r) => r.name === queue);
  return row ? { unacked: row.messages_unacknowledged, consumers: row.consumers } : null;
}

const rabbitOk = (await rabbitAvailable()) && (await ctlUsable());
const stores = [
  { store: 'sqlite', sqlite: true },
  ...((await postgresAvailable()) ? [{ store: 'postgres', sqlite: false }] : []),
];

describe.skipIf(!rabbitOk).each(stores)('on $store', ({ store, sqlite }) => {
  // What createDeps names the consuming connection of a ROLE=all service in this process.
  const consumeConnection = `payments-all-${process.pid}/consume`;
  const rig = useCluster(`consume_drop_${store}`, { ROLE: 'all' }, { sqlite });

  /** Closes the connection the worker consumes on, and waits until RabbitMQ has handed the message out again. */
  async function dropConsumingConnection(): Promise<void> {
    expect(await closeConnectionsNamed(consumeConnection)).toBe(1);
    // The consumer is back on a new connection and RabbitMQ has handed the message out to it again, while the
    // first handler still waits for Stripe.
    const redelivered = await waitFor(
      () => queueState(rig.topology.requests),
      (s) => s?.consumers === 1 && s.unacked === 1 && rig.svc.deps.broker.connections?.().consume === true,
      20_000,
      200,
    );
    expect(redelivered).toEqual({ unacked: 1, consumers: 1 });
  }

  it('the consuming connection lost while Stripe makes the refund: made once, announced once, acked', async () => {
    const [pi] = await paidIntents(rig.svc.url, 1, 5_000);
    const requestId = `${rig.tag}-held`;
    const gate = gateRefundCreate(rig.svc.deps.stripe);
    try {
      await postRefundAsync(rig.svc.url, { payment_intent_id: pi!, amount: 1_500, request_id: requestId });
      await gate.entered; // the worker's call is at "Stripe", its delivery unacked

      await dropConsumingConnection();
      gate.release();

      const read = await waitFor(
        () => getJson(`${rig.svc.url}/refund-status/${requestId}`),
        (r) => r.json.status === 'succeeded',
        20_000,
      );
      expect(read.json).toMatchObject({ status: 'succeeded', amount: 1_500 });
      // Both deliveries settled: the request queue holds nothing, acked or not.
      const settled = await waitFor(
        () => queueState(rig.topology.requests),
        (s) => s?.unacked === 0,
        20_000,
        200,
      );
      expect(settled?.unacked).toBe(0);
    } finally {
      gate.restore();
    }

    await expectExactlyOnce(rig.stripe, [requestId], 1_500);
    // One outcome: waited for, then the outbox drained, so that a second would have been published by now.
    await waitFor(
      () => rig.peek.depth(rig.topology.responses),
      (n) => n >= 1,
      10_000,
    );
    await rig.svc.deps.relay.drain();
    const outcomes = (await rig.peek.drain(rig.topology.responses)).filter((m) => m.body.includes(requestId));
    // At least once is the contract (repeats share a message_id): one announcement is one message_id.
    expect(new Set(outcomes.map((m) => m.messageId)).size).toBe(1);
    for (const m of outcomes)
      expect(JSON.parse(m.body)).toMatchObject({ request_id: requestId, status: 'succeeded' });
    for (const q of [rig.topology.requests, rig.topology.deadLetter, ...retryQueues(rig.topology)])
      expect(await rig.peek.depth(q), q).toBe(0);
    // Each handler settled on its own channel: an ack of the old delivery tag on the new channel would have acked
    // the redelivery before its handler ran, and that handler's own ack then closed the channel (unknown tag).
    expect(rig.svc.lines.filter((l) => l.includes('consumer channel closed with an error'))).toEqual([]);
    expect(rig.svc.lines.filter((l) => l.includes('unexpected failure settling a message'))).toEqual([]);
    // The worker still takes work: a second refund goes through on the new connection.
    const again = `${rig.tag}-after`;
    await postRefundAsync(rig.svc.url, { payment_intent_id: pi!, amount: 1_000, request_id: again });
    const after = await waitFor(
      () => getJson(`${rig.svc.url}/refund-status/${again}`),
      (r) => r.json.status === 'succeeded',
      20_000,
    );
    expect(after.json.status).toBe('succeeded');
  }, 90_000);

  // The handler's outcome is a dead letter (Stripe refused the refund: what was left was refunded meanwhile in the
  // dashboard), decided once its channel is gone: the copy is left to the redelivery, which finds the refund given up
  // and copies it then. One dead-letter copy, one outcome, nothing left unacked.
  it('the consuming connection lost while Stripe refuses the refund: failed once, dead-lettered once', async () => {
    const [pi] = await paidIntents(rig.svc.url, 1, 5_000);
    const requestId = `${rig.tag}-refused`;
    const gate = gateRefundCreate(rig.svc.deps.stripe);
    try {
      await postRefundAsync(rig.svc.url, { payment_intent_id: pi!, amount: 1_500, request_id: requestId });
      await gate.entered;
      // Everything refunded at Stripe outside the service (its own SDK, not the gated one): the held call is refused.
      await rig.stripe.stripe.refunds.create({ payment_intent: pi! });
      await dropConsumingConnection();
      gate.release();

      const read = await waitFor(
        () => getJson(`${rig.svc.url}/refund-status/${requestId}`),
        (r) => r.json.status === 'failed',
        20_000,
      );
      expect(read.json).toMatchObject({ status: 'failed', refund_id: null });
      const settled = await waitFor(
        () => queueState(rig.topology.requests),
        (s) => s?.unacked === 0,
        20_000,
        200,
      );
      expect(settled?.unacked).toBe(0);
    } finally {
      gate.restore();
    }

    const dead = await waitFor(
      () => rig.peek.depth(rig.topology.deadLetter),
      (n) => n >= 1,
      10_000,
    );
    expect(dead).toBe(1);
    const copies = await rig.peek.drain(rig.topology.deadLetter);
    expect(copies.map((m) => JSON.parse(m.body) as unknown)).toEqual([
      { request_key: expect.stringContaining(requestId) as string },
    ]);
    // The first handler's copy was not routed over the new connection; the redelivery's was.
    expect(
      rig.svc.lines.filter(
        (l) => l.includes('left to the redelivery') && l.includes('"action":"dead-letter"'),
      ),
    ).toHaveLength(1);
    await rig.svc.deps.relay.drain();
    const outcomes = (await rig.peek.drain(rig.topology.responses)).filter((m) => m.body.includes(requestId));
    expect(new Set(outcomes.map((m) => m.messageId)).size).toBe(1);
    for (const m of outcomes)
      expect(JSON.parse(m.body)).toMatchObject({ request_id: requestId, status: 'failed', success: false });
    for (const q of [rig.topology.requests, ...retryQueues(rig.topology)])
      expect(await rig.peek.depth(q), q).toBe(0);
    expect(rig.svc.lines.filter((l) => l.includes('consumer channel closed with an error'))).toEqual([]);
    expect(rig.svc.lines.filter((l) => l.includes('unexpected failure settling a message'))).toEqual([]);
  }, 90_000);
});
