/**
 * A checkout session the service never made (created in the Stripe dashboard or by another system), paid on
 * Stripe's page: its events (the session's and its intent's) come newest first and again, and the ledger learns
 * the session and its intent once, with no owner, at the amount paid; refunding it counts what is left once.
 */
import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { payOnHostedPage } from '../helpers/http.js';
import { getJson, postJson, rabbitReady, sandboxEvents, useRig } from './support/rig.js';

const rabbit = await rabbitReady('webhooks of a checkout session the service did not make');

describe.skipIf(!rabbit)('a checkout session the ledger does not know', () => {
  // The test delivers the events itself, in the order it chooses.
  const rig = useRig('sqlite', 'whaudit-unknown-checkout');

  it('is learnt from its events in any order, and its payment refunded once', async () => {
    const session = await rig.dashboard.checkout.sessions.create({
      mode: 'payment',
      line_items: [
        { quantity: 2, price_data: { currency: 'eur', unit_amount: 1250, product_data: { name: 'Mug' } } },
      ],
      success_url: 'https://shop.example/ok',
    });
    expect((await payOnHostedPage(session.url!)).status).toBe(303);
    const pi = (await rig.dashboard.checkout.sessions.retrieve(session.id)).payment_intent as string;
    const events = (
      await sandboxEvents(
        rig,
        new Set(['checkout.session.completed', 'payment_intent.succeeded', 'payment_intent.processing']),
      )
    ).filter((e: Stripe.Event) => [session.id, pi].includes((e.data.object as { id: string }).id));
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining(['checkout.session.completed', 'payment_intent.succeeded']),
    );
    for (const e of [...events.slice().reverse(), ...events]) {
      expect((await rig.send(JSON.stringify(e))).status).toBe(200);
      await rig.settled();
    }

    expect(await rig.svc.deps.store.payments.get(session.id)).toMatchObject({
      status: 'complete',
      owner: '',
      paymentIntentId: pi,
      amount: 2500,
    });
    expect(await rig.svc.deps.store.payments.get(pi)).toMatchObject({
      status: 'succeeded',
      owner: '',
      amount: 2500,
      currency: 'eur',
    });
    const first = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi, amount: 1500 });
    expect(first.status).toBe(200);
    expect(first.json.refund).toMatchObject({ amount: 1500, currency: 'eur', status: 'succeeded' });
    const over = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi, amount: 1010 });
    expect(over.status).toBe(409);
    expect(over.json.code).toBe('amount_exceeds_refundable');
    // The refund's own events and charge.refunded, applied after the answer, do not count it again.
    await rig.settled();
    for (const e of (await sandboxEvents(rig, new Set(['refund.created', 'charge.refunded']))).filter(
      (x) => (x.data.object as { payment_intent?: string }).payment_intent === pi,
    )) {
      expect((await rig.send(JSON.stringify(e))).status).toBe(200);
    }
    await rig.settled();
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(1500);
    const rest = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi });
    expect(rest.status).toBe(200);
    expect(rest.json.refund).toMatchObject({ amount: 1000 });
  });
});
