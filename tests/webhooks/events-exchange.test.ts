/**
 * Other services subscribe to the `stripe.events` topic exchange: each verified event reaches every
 * bound queue whose pattern matches its type, once per event id, however often Stripe redelivers it.
 */
import type Stripe from 'stripe';
import { beforeAll, describe, expect, it } from 'vitest';
import { dropClientSecrets } from '../../src/webhooks/client-secrets.js';
import {
  paidInDashboard,
  paidThroughService,
  rabbitReady,
  sandboxEvents,
  useRig,
  type AmqpMessage,
} from './support/rig.js';

const rabbit = await rabbitReady('webhook events exchange');

describe.skipIf(!rabbit)('stripe.events exchange', () => {
  const rig = useRig('sqlite', 'exchange');
  let all: string;
  let refunds: string;
  let succeeded: string;
  let events: Stripe.Event[];
  beforeAll(async () => {
    all = await rig.subscribe('#');
    refunds = await rig.subscribe('refund.*');
    succeeded = await rig.subscribe('payment_intent.succeeded');
    const pi = await paidThroughService(rig, 'pm_card_visa', 2000);
    await rig.dashboard.refunds.create({ payment_intent: pi, amount: 500 });
    const other = await paidInDashboard(rig, 'pm_card_pendingRefund', 700);
    const pending = await rig.dashboard.refunds.create({ payment_intent: other });
    await rig.settleRefund(pending.id);
    events = await sandboxEvents(
      rig,
      new Set([
        'payment_intent.created',
        'payment_intent.succeeded',
        'charge.succeeded',
        'refund.created',
        'refund.updated',
        'charge.refunded',
        'charge.refund.updated',
      ]),
    );
  });

  const ids = (messages: AmqpMessage[]) => messages.map((m) => m.messageId).sort();
  const idsOf = (list: Stripe.Event[]) => list.map((e) => e.id).sort();

  it('every verified event is published once per id, routed by its type, with redeliveries dropped', async () => {
    expect(events.length).toBeGreaterThanOrEqual(10);
    // First deliveries, then each event again four times, two of them at the same moment.
    for (const e of events) expect((await rig.send(JSON.stringify(e))).status).toBe(200);
    // Four events (16 requests) at a time: one client's webhooks beyond MAX_WEBHOOKS_PER_CLIENT in progress are
    // answered 503 overloaded, which a busy machine reached with all of them at once.
    const replies: unknown[] = [];
    for (let i = 0; i < events.length; i += 4) {
      replies.push(
        ...(await Promise.all(
          events
            .slice(i, i + 4)
            .flatMap((e) => [0, 1, 2, 3].map(() => rig.send(JSON.stringify(e)).then((r) => r.json()))),
        )),
      );
    }
    expect(replies).toHaveLength(events.length * 4);
    for (const reply of replies) expect(reply).toEqual({ success: true, duplicate: true });
    await rig.settled();

    const everything = await rig.drain(all);
    expect(ids(everything)).toEqual(idsOf(events));
    for (const m of everything) {
      const sent = events.find((e) => e.id === m.messageId)!;
      expect(m.routingKey).toBe(sent.type);
      expect(m.exchange).toBe(rig.topology.events);
      expect(m.persistent).toBe(true);
      expect(m.contentType).toBe('application/json');
      // As Stripe sent it, but for the client secret Stripe puts in payment_intent.* events.
      expect(m.body).toEqual(dropClientSecrets(JSON.parse(JSON.stringify(sent))));
      expect(JSON.stringify(m.body)).not.toMatch(/_secret_/);
    }
    expect(ids(await rig.drain(refunds))).toEqual(idsOf(events.filter((e) => e.type.startsWith('refund.'))));
    expect(ids(await rig.drain(succeeded))).toEqual(
      idsOf(events.filter((e) => e.type === 'payment_intent.succeeded')),
    );
    expect(await rig.svc.deps.store.inbox.count()).toBe(events.length);
  });

  it('a replayed event id with a different body is acknowledged and changes nothing', async () => {
    const original = events.find((e) => e.type === 'refund.created')!;
    const before = await rig.counts();
    const forged = structuredClone(original) as unknown as { data: { object: Record<string, unknown> } };
    forged.data.object['status'] = 'failed';
    forged.data.object['amount'] = 1;
    const res = await rig.send(JSON.stringify(forged));
    expect(await res.json()).toEqual({ success: true, duplicate: true });
    await rig.settled();
    expect(await rig.counts()).toEqual(before);
    expect(await rig.drain(all)).toEqual([]);
    const row = await rig.svc.deps.store.refunds.getByStripeId((original.data.object as Stripe.Refund).id);
    expect(row).toMatchObject({ status: 'succeeded', amount: 500 });
  });

  it('a subscriber bound later sees only events verified after it bound', async () => {
    const late = await rig.subscribe('refund.updated');
    const pi = await paidInDashboard(rig, 'pm_card_pendingRefund', 900);
    const refund = await rig.dashboard.refunds.create({ payment_intent: pi });
    await rig.settleRefund(refund.id);
    const fresh = (await sandboxEvents(rig, new Set(['refund.updated']))).filter(
      (e) => (e.data.object as Stripe.Refund).id === refund.id,
    );
    expect(fresh).toHaveLength(1);
    for (let i = 0; i < 3; i++) expect((await rig.send(JSON.stringify(fresh[0]))).status).toBe(200);
    await rig.settled();
    expect(ids(await rig.drain(late))).toEqual([fresh[0]!.id]);
    expect(ids(await rig.drain(all))).toEqual([fresh[0]!.id]);
  });

  it('a client secret inside a string, the 3D Secure challenge URL of next_action, is removed too', async () => {
    // What a shop's browser makes: a card that asks for 3D Secure, confirmed with a return_url. Stripe's event
    // then carries the intent's client secret in next_action.redirect_to_url.url
    // (hooks.stripe.com/3d_secure_2/hosted?...&payment_intent_client_secret=pi_..._secret_...).
    const pi = await rig.dashboard.paymentIntents.create({
      amount: 1500,
      currency: 'usd',
      payment_method: 'pm_card_threeDSecure2Required',
      allowed_payment_method_types: ['card'],
      confirm: true,
      return_url: 'https://shop.example/back',
    });
    const secret = pi.client_secret!.split('_secret_')[1]!;
    const [event] = (await sandboxEvents(rig, new Set(['payment_intent.requires_action']))).filter(
      (e) => (e.data.object as Stripe.PaymentIntent).id === pi.id,
    );
    expect(JSON.stringify(event)).toContain(secret);

    expect((await rig.send(JSON.stringify(event))).status).toBe(200);
    await rig.settled();
    const stored = await rig.svc.deps.store.inbox.get(event!.id);
    expect(stored).not.toBeNull();
    expect(JSON.stringify(stored!.payload)).not.toContain(secret);
    const published = (await rig.drain(all)).filter((m) => m.messageId === event!.id);
    expect(published).toHaveLength(1);
    expect(JSON.stringify(published[0]!.body)).not.toContain(secret);
    // The rest of the event is as Stripe sent it: the page to send the customer to, less its secret.
    expect(published[0]!.body).toMatchObject({
      data: {
        object: {
          id: pi.id,
          status: 'requires_action',
          next_action: {
            type: 'redirect_to_url',
            redirect_to_url: { return_url: 'https://shop.example/back' },
          },
        },
      },
    });
  });
});
