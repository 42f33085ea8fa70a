import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, paidIntent, startSandbox, stripeFor, type Sandbox } from './helpers/fixtures.js';

describe('Events API', () => {
  let sandbox: Sandbox;
  let stripe: Stripe;
  let intent: Stripe.PaymentIntent;
  let refund: Stripe.Refund;

  beforeAll(async () => {
    sandbox = await startSandbox();
    stripe = stripeFor(sandbox);
    intent = await paidIntent(stripe, 2500);
    refund = await stripe.refunds.create(
      { payment_intent: intent.id, amount: 500 },
      { idempotencyKey: 'evt-refund' },
    );
    await stripe.refunds.update(refund.id, { metadata: { why: 'late' } });
  });
  afterAll(() => sandbox.close());

  it('records each state change as a Stripe-shaped event, newest first', async () => {
    const events = await stripe.events.list();
    expect(events.url).toBe('/v1/events');
    expect(events.data.map((e) => e.type)).toEqual([
      'charge.refund.updated',
      'refund.updated',
      'charge.refunded',
      'refund.created',
      'payment_intent.succeeded',
      'charge.succeeded',
      'payment_intent.created',
    ]);
    for (const event of events.data) {
      expect(event.object).toBe('event');
      expect(event.livemode).toBe(false);
      expect(event.pending_webhooks).toBe(0);
      expect(event.api_version).toBe('2026-10-28.endive');
      expect(event.request?.id).toMatch(/^req_/);
    }
    const refunded = events.data.find((e) => e.type === 'charge.refunded');
    expect((refunded?.data.object as Stripe.Charge).amount_refunded).toBe(500);
    expect(refunded?.request?.idempotency_key).toBe('evt-refund');
    const updated = events.data.find((e) => e.type === 'refund.updated');
    expect((updated?.data.object as Stripe.Refund).metadata).toEqual({ why: 'late' });
    expect(updated?.data.previous_attributes).toEqual({ metadata: {} });
    expect(refunded?.data.previous_attributes).toBeUndefined();
  });

  it('filters by type (with wildcard), types[], created and delivery_success', async () => {
    expect((await stripe.events.list({ type: 'refund.created' })).data).toHaveLength(1);
    const charges = await stripe.events.list({ type: 'charge.*' });
    expect(charges.data.map((e) => e.type)).toEqual([
      'charge.refund.updated',
      'charge.refunded',
      'charge.succeeded',
    ]);
    const both = await stripe.events.list({ types: ['payment_intent.created', 'refund.updated'] });
    expect(both.data.map((e) => e.type)).toEqual(['refund.updated', 'payment_intent.created']);
    const exclusive = await errorOf(() => stripe.events.list({ type: 'a', types: ['b'] }));
    expect(exclusive.statusCode).toBe(400);

    const newest = (await stripe.events.list({ limit: 1 })).data[0] as Stripe.Event;
    expect((await stripe.events.list({ created: { gt: newest.created } })).data).toEqual([]);
    expect((await stripe.events.list({ created: newest.created })).data.length).toBeGreaterThan(0);
    expect((await stripe.events.list({ delivery_success: false })).data).toEqual([]);
  });

  it('pages through events and retrieves one by id', async () => {
    const page1 = await stripe.events.list({ limit: 3 });
    expect(page1.has_more).toBe(true);
    const page2 = await stripe.events.list({ limit: 3, starting_after: page1.data[2]?.id as string });
    const page3 = await stripe.events.list({ limit: 3, starting_after: page2.data[2]?.id as string });
    expect(page3.has_more).toBe(false);
    expect([...page1.data, ...page2.data, ...page3.data]).toHaveLength(7);

    const one = await stripe.events.retrieve(page2.data[0]?.id as string);
    expect(one).toEqual(page2.data[0]);
    const missing = await errorOf(() => stripe.events.retrieve('evt_nope'));
    expect(missing.statusCode).toBe(404);
    expect(missing.message).toBe("No such event: 'evt_nope'");
  });

  it('keeps only the newest events when maxEvents is reached', async () => {
    const small = await startSandbox({ maxEvents: 10 });
    try {
      const client = stripeFor(small);
      for (let i = 0; i < 15; i++) await client.paymentIntents.create({ amount: 100 + i, currency: 'usd' });
      const all: Stripe.Event[] = [];
      for await (const e of client.events.list({ limit: 100 })) all.push(e);
      expect(all.length).toBeLessThanOrEqual(10);
      expect((all[0]?.data.object as Stripe.PaymentIntent).amount).toBe(114);
    } finally {
      await small.close();
    }
  });
});
