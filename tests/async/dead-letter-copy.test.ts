/**
 * A refund the worker gives up on ends in `stripe_refund_requests.dlq`: the worker copies its message there and acks
 * the original only once RabbitMQ has confirmed the copy. When the copy fails (an operator deleted the dead-letter
 * queue), the original is requeued and the queue declared again; the redelivery then found the refund already
 * failed in the ledger and acked it as done, so the message never reached the dead-letter queue.
 */
import { connect } from 'amqplib';
import { describe, expect, it } from 'vitest';
import { getJson, postJson } from '../helpers/http.js';
import { RABBITMQ_URL, postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import { paidIntents, useCluster, waitFor } from './support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());

describe.skipIf(!ready)('the dead-letter copy of a refund given up on', () => {
  const rig = useCluster('dlqcopy', { ROLE: 'all' });
  const { tag, topology } = rig;

  it('reaches the dead-letter queue even when that queue was deleted under the worker', async () => {
    const admin = await connect(RABBITMQ_URL);
    try {
      const ch = await admin.createChannel();
      await ch.deleteQueue(topology.deadLetter);
      await ch.close();
    } finally {
      await admin.close();
    }

    const [pi] = await paidIntents(rig.svc.url, 1, 10_000);
    // Refunded at Stripe behind the service's back: Stripe refuses the worker's refund for good.
    await rig.stripe.stripe.refunds.create({ payment_intent: pi! });
    const id = `${tag}-refused`;
    const accepted = await postJson(`${rig.svc.url}/refund-async`, { payment_intent_id: pi, request_id: id });
    expect(accepted.status).toBe(202);

    const done = await waitFor(
      () => getJson(`${rig.svc.url}/refund-status/${id}`),
      (r) => r.status === 200 && r.json.status === 'failed',
      20_000,
    );
    expect(done.json).toMatchObject({ status: 'failed', failure_reason: 'charge_already_refunded' });

    const dead = await waitFor(
      async () => (await rig.peek.depth(topology.deadLetter).catch(() => 0)) > 0,
      (found) => found,
      10_000,
    );
    expect(dead).toBe(true);
    const messages = await rig.peek.drain(topology.deadLetter);
    expect(messages.map((m) => JSON.parse(m.body) as unknown)).toEqual([{ request_key: id }]);
    expect(messages[0]!.headers['x-dead-letter-reason']).toBe('charge_already_refunded');
    expect(await rig.peek.depth(topology.requests)).toBe(0);
  }, 60_000);
});
