/**
 * Events of the other mode. Stripe's test and live modes have endpoints, secrets and objects of their own, but a
 * deployment that lists both modes' endpoint secrets in STRIPE_WEBHOOK_SECRET (one URL given to both endpoints, a
 * secret copied from the wrong one) verifies either mode's events. A live event reaching a service that runs with
 * a test key (or the reverse) was applied like its own: a final refund snapshot, applied without asking Stripe, was
 * recorded as a refund made in the dashboard on a payment intent the ledger did not know, and announced on
 * stripe_refund_responses as a succeeded refund. An event whose `livemode` is not the service's mode is now
 * stored, published and acknowledged, and changes nothing in the ledger.
 *
 * The webhook service is told its mode (`livemode`, from the Stripe key); this suite builds one on the rig's
 * store and Stripe with the mode of the rig's test key.
 */
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { createWebhookService } from '../../src/webhooks/service.js';
import { databases, paidInDashboard, rabbitReady, useRig } from './support/rig.js';

const rabbit = await rabbitReady('events of the other Stripe mode');
const dbs = await databases();

describe.skipIf(!rabbit).each(dbs)('events of the other mode on %s', (db) => {
  const rig = useRig(db, `mode.${db}`);

  const event = (object: unknown, livemode: boolean) =>
    JSON.stringify({
      id: `evt_mode${randomBytes(8).toString('hex')}`,
      object: 'event',
      created: Math.floor(Date.now() / 1000),
      data: { object },
      livemode,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type: 'refund.updated',
    });

  it('a live event at a service with a test key is stored and changes nothing; a test one is applied', async () => {
    const { deps } = rig.svc;
    const webhooks = createWebhookService({
      store: deps.store,
      stripe: deps.stripe,
      payments: deps.payments,
      refunds: deps.refunds,
      logger: deps.logger,
      secrets: [rig.secret],
      eventsExchange: rig.topology.events,
      livemode: false,
    });
    const sign = (body: string) =>
      Stripe.webhooks.generateTestHeaderString({ payload: body, secret: rig.secret });

    const pi = await paidInDashboard(rig, 'pm_card_visa', 1000);
    const refund = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 300 });
    expect(refund.status).toBe('succeeded');

    const live = event(refund, true);
    expect(await webhooks.receive(Buffer.from(live), sign(live))).toMatchObject({ duplicate: false });
    await webhooks.idle();
    const liveId = (JSON.parse(live) as { id: string }).id;
    expect(await deps.store.inbox.get(liveId)).toMatchObject({
      processedAt: expect.any(String),
      attempts: 0,
    });
    expect(await deps.store.refunds.getByStripeId(refund.id)).toBeNull();

    const test = event(refund, false);
    await webhooks.receive(Buffer.from(test), sign(test));
    await webhooks.idle();
    expect(await deps.store.refunds.getByStripeId(refund.id)).toMatchObject({
      status: 'succeeded',
      amount: 300,
    });
    await rig.settled();
  });

  it('the service takes its mode from its Stripe key: its own /webhook leaves a live event alone', async () => {
    // The rig's service runs with an sk_test_ key, so its webhook service is in test mode.
    const pi = await paidInDashboard(rig, 'pm_card_visa', 1000);
    const refund = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 400 });
    expect(refund.status).toBe('succeeded');

    const live = event(refund, true);
    expect((await rig.send(live)).status).toBe(200);
    await rig.settled();
    expect(await rig.svc.deps.store.refunds.getByStripeId(refund.id)).toBeNull();

    const test = event(refund, false);
    expect((await rig.send(test)).status).toBe(200);
    await rig.settled();
    expect(await rig.svc.deps.store.refunds.getByStripeId(refund.id)).toMatchObject({
      status: 'succeeded',
      amount: 400,
    });
  });
});
