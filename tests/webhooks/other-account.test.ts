/**
 * Events of another Stripe account. A webhook endpoint set up to listen to events on connected accounts (Stripe
 * Connect) gets each connected account's events, signed with the endpoint's secret like any other and naming the
 * account in `account`. The service never acts for another account: none of their objects is this ledger's.
 *
 * Such an event was applied like this account's own: a connected account's succeeded refund (a final snapshot,
 * applied without asking Stripe) was recorded as a refund made in the dashboard on an unknown payment intent,
 * counted, and announced on stripe_refund_responses as a succeeded refund; its other events were read with this
 * account's key (404 at Stripe, a warning each). They are now acknowledged, stored and published like any other
 * verified event, and change nothing in the ledger.
 */
import { randomBytes } from 'node:crypto';
import type Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { databases, paidInDashboard, rabbitReady, useRig } from './support/rig.js';

const rabbit = await rabbitReady('events of another Stripe account');
const dbs = await databases();

describe.skipIf(!rabbit).each(dbs)('events of a connected account on %s', (db) => {
  const rig = useRig(db, `account.${db}`);
  let eventsQueue: string;
  beforeAll(async () => {
    eventsQueue = await rig.subscribe('#');
  });

  const event = (type: string, object: unknown, account?: string) =>
    JSON.stringify({
      id: `evt_acct${randomBytes(8).toString('hex')}`,
      object: 'event',
      ...(account ? { account } : {}),
      created: Math.floor(Date.now() / 1000),
      data: { object },
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type,
    });

  it('are acknowledged, stored and published, and record nothing: no refund, no outcome, no payment', async () => {
    // Objects the ledger has never seen, as a connected account's are: applied as this account's events, each
    // would be recorded (a refund made in the dashboard, a payment intent paid in the dashboard).
    const pi = await paidInDashboard(rig, 'pm_card_visa', 1000);
    const refund = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 400 });
    expect(refund.status).toBe('succeeded');
    const intent: Stripe.PaymentIntent = await rig.dashboard.paymentIntents.retrieve(pi);
    const sent = [
      event('refund.created', refund, 'acct_1Connected00000'),
      event('charge.refund.updated', refund, 'acct_1Connected00000'),
      event('payment_intent.succeeded', intent, 'acct_1Connected00000'),
    ];
    for (const body of sent) {
      const res = await rig.send(body);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ success: true });
    }
    await rig.settled();

    for (const body of sent) {
      const id = (JSON.parse(body) as { id: string }).id;
      expect(await rig.svc.deps.store.inbox.get(id)).toMatchObject({
        processedAt: expect.any(String),
        attempts: 0,
      });
    }
    expect(await rig.svc.deps.store.refunds.getByStripeId(refund.id)).toBeNull();
    expect(await rig.svc.deps.store.payments.get(pi)).toBeNull();
    expect(await rig.drain(rig.topology.responses)).toEqual([]);
    const published = await rig.drain(eventsQueue);
    expect(published.map((m) => m.messageId).sort()).toEqual(
      sent.map((b) => (JSON.parse(b) as { id: string }).id).sort(),
    );

    // The same refund's event from this account (no `account`) is still applied.
    const own = await rig.send(event('refund.created', refund));
    expect(own.status).toBe(200);
    await rig.settled();
    expect(await rig.svc.deps.store.refunds.getByStripeId(refund.id)).toMatchObject({
      status: 'succeeded',
      amount: 400,
    });
  });
});
