/**
 * Stripe sends a refund's events in no set order and more than once: `refund.updated` (succeeded) before
 * `refund.created` (pending), a bank's return (`refund.failed`) before the `refund.created` that said succeeded,
 * `charge.refunded` (whose refunds the service lists) beside the refund's own events. Whatever the order, each
 * refund is in the ledger once, ends where Stripe is, is announced once per status it moved to, and what is left
 * to refund counts it once, also beside a refund of the service's own on the same payment still in flight.
 */
import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import {
  databases,
  getJson,
  paidThroughService,
  postJson,
  rabbitReady,
  sandboxEvents,
  useRig,
  type AmqpMessage,
} from './support/rig.js';

const rabbit = await rabbitReady('webhook event order');
const dbs = await databases();
const REFUND_EVENTS = new Set([
  'refund.created',
  'refund.updated',
  'refund.failed',
  'charge.refunded',
  'charge.refund.updated',
]);

describe.skipIf(!rabbit).each(dbs)('refund events out of order and repeated, on %s', (db) => {
  // The test delivers every event itself, in the order it chooses.
  const rig = useRig(db, `whaudit-order.${db}`);

  /** The sandbox's refund events about these refunds or payment intents, oldest first. */
  async function eventsAbout(ids: string[]): Promise<Stripe.Event[]> {
    return (await sandboxEvents(rig, REFUND_EVENTS)).filter((e) => {
      const o = e.data.object as { id: string; payment_intent?: string | null };
      return ids.includes(o.id) || ids.includes(o.payment_intent ?? '');
    });
  }

  /** Delivers each event (one by one, each applied before the next) and answers the outcomes published. */
  async function deliver(events: Stripe.Event[]): Promise<AmqpMessage[]> {
    for (const e of events) {
      expect((await rig.send(JSON.stringify(e))).status).toBe(200);
      await rig.settled();
    }
    return rig.drain(rig.topology.responses);
  }

  const statuses = (outcomes: AmqpMessage[], requestId: string) =>
    outcomes
      .map((m) => m.body as { request_id: string; status: string })
      .filter((b) => b.request_id === requestId)
      .map((b) => b.status);

  it('a dashboard refund whose `succeeded` comes before its `created` (pending) is succeeded, once', async () => {
    const pi = await paidThroughService(rig, 'pm_card_pendingRefund', 1000);
    const made = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 400 });
    await rig.settleRefund(made.id);
    const events = await eventsAbout([made.id, pi]);
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['refund.created', 'refund.updated', 'charge.refunded']),
    );
    await rig.drain(rig.topology.responses);

    // Newest first, then every one again oldest first (Stripe's retries).
    const outcomes = await deliver([...events.slice().reverse(), ...events]);

    const requestId = `stripe:${made.id}`;
    expect(statuses(outcomes, requestId)).toEqual(['succeeded']);
    const status = await getJson(`${rig.svc.url}/refund-status/${requestId}`);
    expect(status.json).toMatchObject({ status: 'succeeded', refund_id: made.id, amount: 400 });
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(400);
    const over = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi, amount: 610 });
    expect(over.status).toBe(409);
    expect(over.json.code).toBe('amount_exceeds_refundable');
  });

  it("a bank's return applied before the `created` that said succeeded: failed, announced once, amount free", async () => {
    const pi = await paidThroughService(rig, 'pm_card_refundFail', 2000);
    const made = await postJson(`${rig.svc.url}/refund`, {
      payment_intent_id: pi,
      request_id: 'order-bank-return',
    });
    expect(made.status).toBe(200);
    const refundId = (made.json.refund as { id: string }).id;
    await rig.settled();
    await rig.drain(rig.topology.responses);
    await rig.settleRefund(refundId);
    const events = await eventsAbout([refundId, pi]);
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['refund.created', 'refund.failed', 'charge.refunded']),
    );

    const outcomes = await deliver([...events.slice().reverse(), ...events]);

    const sent = outcomes.filter(
      (m) => (m.body as { request_id: string }).request_id === 'order-bank-return',
    );
    expect(sent.map((m) => m.body)).toEqual([
      expect.objectContaining({
        status: 'failed',
        success: false,
        refund_id: refundId,
        failure_reason: 'expired_or_canceled_card',
      }),
    ]);
    const status = await getJson(`${rig.svc.url}/refund-status/order-bank-return`);
    expect(status.json).toMatchObject({
      status: 'failed',
      refund_id: refundId,
      failure_reason: 'expired_or_canceled_card',
    });
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(0);
    const again = await postJson(`${rig.svc.url}/refund`, {
      payment_intent_id: pi,
      request_id: 'order-again',
    });
    expect(again.status).toBe(200);
    expect(again.json.refund).toMatchObject({ amount: 2000 });
  });

  it("a dashboard refund beside the service's own refund in flight: each counted once", async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 1000);
    // The service's own refund, accepted and not yet answered by Stripe (as the worker leaves it mid-call).
    await rig.svc.deps.store.refunds.insert({
      requestId: 'order-in-flight',
      owner: '',
      paymentIntentId: pi,
      amount: 600,
      currency: 'usd',
      status: 'processing',
      mode: 'async',
    });
    const dashboard = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 400 });
    await deliver(await eventsAbout([dashboard.id, pi]));
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(1000);

    // Stripe makes the service's refund (its calls name the request in the metadata); every event of both
    // refunds comes again, newest first: `charge.refunded` lists both.
    const own = await rig.dashboard.refunds.create({
      payment_intent: pi,
      amount: 600,
      metadata: { request_id: 'order-in-flight' },
    });
    const all = await eventsAbout([dashboard.id, own.id, pi]);
    expect(all.filter((e) => e.type === 'charge.refunded')).toHaveLength(2);
    await deliver(all.reverse());

    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(1000);
    const rows = await rig.svc.deps.store.refunds.listForPaymentIntent(pi);
    expect(rows.map((r) => [r.requestId, r.stripeRefundId, r.status]).sort()).toEqual(
      [
        ['order-in-flight', own.id, 'succeeded'],
        [`stripe:${dashboard.id}`, dashboard.id, 'succeeded'],
      ].sort(),
    );
    const more = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi, amount: 10 });
    expect(more.status).toBe(409);
    expect(more.json.code).toBe('charge_already_refunded');
  });
});
