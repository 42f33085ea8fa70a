/**
 * Stripe refuses a refund for want of money left, and the refunds it has on the payment intent include one that is
 * this request's by the ledger's own rule (ledgerRowOf: tagged with its key, of its payment intent and of its
 * amount; say an earlier call whose answer was lost, made under a key Stripe no longer knows). The service then
 * learns that refund and ties the row to it: the refund is made, not refused.
 *
 * It learnt it only after it had recorded the refusal. The row went `failed` first, its failure announced on the
 * responses queue (`success: false`) and counted, and only then was it put right to `succeeded` (a second outcome).
 * The worker, reading the row from before it learnt, also took the refund for failed and dead-lettered its message.
 */
import { describe, expect, it } from 'vitest';
import {
  databases,
  getJson,
  paidThroughService,
  postJson,
  rabbitReady,
  useRig,
  until,
  type Rig,
} from './support/rig.js';

const rabbit = await rabbitReady('a refund refused while Stripe has made it');
const dbs = await databases();

/** The outcome messages published for `requestId`, once everything written is sent. */
async function outcomesOf(rig: Rig, requestId: string): Promise<Record<string, unknown>[]> {
  await rig.settled();
  return (await rig.drain(rig.topology.responses))
    .map((m) => m.body as Record<string, unknown>)
    .filter((b) => b.request_id === requestId);
}

describe.skipIf(!rabbit).each(dbs)('a refund Stripe refuses but has made for the request on %s', (db) => {
  const rig = useRig(db, `refused-made.${db}`);

  it('POST /refund answers it made, and only its success is announced', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 1000);
    const requestId = `sync-made-${db}`;
    const made = await rig.dashboard.refunds.create({
      payment_intent: pi,
      amount: 600,
      metadata: { request_id: requestId },
    });

    const res = await postJson(`${rig.svc.url}/refund`, {
      payment_intent_id: pi,
      amount: 600,
      request_id: requestId,
    });
    expect(res.status).toBe(200);
    expect(res.json.refund).toMatchObject({ id: made.id, amount: 600, status: 'succeeded' });
    expect((await getJson(`${rig.svc.url}/refund-status/${requestId}`)).json).toMatchObject({
      status: 'succeeded',
      refund_id: made.id,
    });
    const outcomes = await outcomesOf(rig, requestId);
    expect(outcomes.map((o) => [o.status, o.success])).toEqual([['succeeded', true]]);
  });

  it('a queued refund ends succeeded, only its success is announced, and nothing is dead-lettered', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 1000);
    const requestId = `queued-made-${db}`;
    const made = await rig.dashboard.refunds.create({
      payment_intent: pi,
      amount: 600,
      metadata: { request_id: requestId },
    });

    const accepted = await postJson(`${rig.svc.url}/refund-async`, {
      payment_intent_id: pi,
      amount: 600,
      request_id: requestId,
    });
    expect(accepted.status).toBe(202);
    const status = await until(async () => {
      const r = await getJson(`${rig.svc.url}/refund-status/${requestId}`);
      return r.json.status !== 'queued' && r.json.status !== 'processing' && r.json;
    }, 'the worker to settle the queued refund');
    expect(status).toMatchObject({ status: 'succeeded', refund_id: made.id });
    // Everything written for it by now is published once the outbox is empty, a failure announced first included.
    const outcomes = await outcomesOf(rig, requestId);
    expect(outcomes.map((o) => [o.status, o.success, o.refund_id])).toEqual([['succeeded', true, made.id]]);
    const deadLettered = (await rig.drain(rig.topology.deadLetter)).filter((m) =>
      m.messageId.startsWith(`${requestId}#`),
    );
    expect(deadLettered).toEqual([]);
  });
});
