/**
 * A refund asked for what is left (no amount) has its amount fixed at acceptance, from what the ledger knows. A
 * refund made in the Stripe dashboard whose webhook has not come yet is not counted: Stripe refused the worker's
 * refund of the old "what is left" as too large, and the request ended `failed` for good, though the client asked
 * for whatever was left and something was. The worker now learns what Stripe has, lowers the refund to what is left
 * there, and asks for that under an idempotency key of its own: the request ends `succeeded` with that amount, and
 * the ledger holds exactly what Stripe refunded.
 */
import { describe, expect, it } from 'vitest';
import {
  databases,
  getJson,
  paidThroughService,
  postJson,
  rabbitReady,
  until,
  useRig,
} from './support/rig.js';

const rabbit = await rabbitReady('refunds of what is left refused by Stripe');
const dbs = await databases();

describe.skipIf(!rabbit).each(dbs)('a queued refund of what is left, less left at Stripe, on %s', (db) => {
  // The sandbox sends no webhooks to the service: the dashboard refunds below stay unheard of.
  const rig = useRig(db, `what-is-left.${db}`);

  it('refunds what Stripe has left, once, and the ledger holds that amount', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 1000);
    const dashboard = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 600 });
    const requestId = `what-is-left-${db}`;
    const accepted = await postJson(`${rig.svc.url}/refund-async`, {
      payment_intent_id: pi,
      request_id: requestId,
      metadata: { order: 'o-1' },
    });
    expect(accepted.status).toBe(202);

    const done = await until(async () => {
      const r = await getJson(`${rig.svc.url}/refund-status/${requestId}`);
      return r.json.status !== 'queued' && r.json.status !== 'processing' && r.json;
    }, 'the worker to finish the refund');
    expect(done).toMatchObject({ status: 'succeeded', amount: 400, failure_reason: null });

    // At Stripe: the dashboard refund and one refund of the rest, tagged with the request, nothing more.
    const atStripe = (await rig.dashboard.refunds.list({ payment_intent: pi, limit: 100 })).data;
    expect(atStripe.map((r) => r.amount).sort()).toEqual([400, 600]);
    const ours = atStripe.find((r) => r.id !== dashboard.id)!;
    expect(ours.id).toBe(done.refund_id);
    expect(ours.metadata).toEqual({ order: 'o-1', request_id: requestId });
    const intent = await rig.dashboard.paymentIntents.retrieve(pi, { expand: ['latest_charge'] });
    expect((intent.latest_charge as { amount_refunded: number }).amount_refunded).toBe(1000);

    // The ledger: the dashboard refund learnt, and what is refunded is what Stripe refunded.
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(1000);
    await rig.settled();
    const outcome = (await rig.drain(rig.topology.responses))
      .map((m) => m.body as Record<string, unknown>)
      .filter((b) => b.request_id === requestId);
    expect(outcome).toEqual([
      expect.objectContaining({ success: true, status: 'succeeded', amount: 400, refund_id: ours.id }),
    ]);

    // The same request again is the same refund; nothing more is made.
    const again = await postJson(`${rig.svc.url}/refund-async`, {
      payment_intent_id: pi,
      request_id: requestId,
      metadata: { order: 'o-1' },
    });
    expect(again.status).toBe(202);
    const redone = await rig.svc.deps.refunds.process(
      (await rig.svc.deps.store.refunds.getByStripeId(ours.id))!.requestId,
      false,
    );
    expect(redone.kind).toBe('done');
    expect((await rig.dashboard.refunds.list({ payment_intent: pi, limit: 100 })).data).toHaveLength(2);
  });

  it('POST /refund of what is left answers the refund of what Stripe has left', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 1000);
    await rig.dashboard.refunds.create({ payment_intent: pi, amount: 300 });
    const requestId = `sync-what-is-left-${db}`;
    const made = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi, request_id: requestId });
    expect(made.status).toBe(200);
    expect(made.json.refund).toMatchObject({ amount: 700, status: 'succeeded' });
    expect((await getJson(`${rig.svc.url}/refund-status/${requestId}`)).json).toMatchObject({
      status: 'succeeded',
      amount: 700,
    });
    const atStripe = (await rig.dashboard.refunds.list({ payment_intent: pi, limit: 100 })).data;
    expect(atStripe.map((r) => r.amount).sort()).toEqual([300, 700]);
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(1000);
    // Sent again: the same refund, nothing more made.
    const again = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi, request_id: requestId });
    expect(again.status).toBe(200);
    expect(again.json.refund).toMatchObject({ amount: 700, id: (made.json.refund as { id: string }).id });
    expect((await rig.dashboard.refunds.list({ payment_intent: pi, limit: 100 })).data).toHaveLength(2);
  });

  it('a refund of a given amount refused so still fails: the client chose that amount', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 1000);
    await rig.dashboard.refunds.create({ payment_intent: pi, amount: 600 });
    const requestId = `given-amount-${db}`;
    const accepted = await postJson(`${rig.svc.url}/refund-async`, {
      payment_intent_id: pi,
      amount: 1000,
      request_id: requestId,
    });
    expect(accepted.status).toBe(202);
    const done = await until(async () => {
      const r = await getJson(`${rig.svc.url}/refund-status/${requestId}`);
      return r.json.status === 'failed' && r.json;
    }, 'the worker to record the refusal');
    expect(done).toMatchObject({
      refund_id: null,
      failure_reason: 'amount_exceeds_refundable',
      amount: 1000,
    });
    expect((await rig.dashboard.refunds.list({ payment_intent: pi, limit: 100 })).data).toHaveLength(1);
  });

  it('nothing left at Stripe: the refund of what is left fails as before', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 1000);
    await rig.dashboard.refunds.create({ payment_intent: pi });
    const requestId = `nothing-left-${db}`;
    const accepted = await postJson(`${rig.svc.url}/refund-async`, {
      payment_intent_id: pi,
      request_id: requestId,
    });
    expect(accepted.status).toBe(202);
    const done = await until(async () => {
      const r = await getJson(`${rig.svc.url}/refund-status/${requestId}`);
      return r.json.status === 'failed' && r.json;
    }, 'the worker to record the refusal');
    expect(done).toMatchObject({ refund_id: null, failure_reason: 'charge_already_refunded' });
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(1000);
  });
});
