/**
 * With `maxObjects` (the service's embedded sandbox sets it) every kind of object keeps only its newest that
 * many, and what indexes an evicted object goes with it, so a long-running process does not grow with every
 * payment it has ever made.
 */
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, paidIntent, startSandbox, stripeFor, type Sandbox } from './helpers/fixtures.js';

describe('object limit', () => {
  let sandbox: Sandbox;
  let stripe: Stripe;

  beforeAll(async () => {
    sandbox = await startSandbox({ maxObjects: 3, refundSettleDelayMs: 60_000 });
    stripe = stripeFor(sandbox);
  });
  afterAll(() => sandbox.close());

  it('keeps the newest objects of each kind; an evicted intent is unknown, with its charges and refunds', async () => {
    const intents: Stripe.PaymentIntent[] = [];
    for (let i = 0; i < 5; i++) {
      const pi = await paidIntent(stripe, 1000 + i);
      await stripe.refunds.create({ payment_intent: pi.id, amount: 100 });
      intents.push(pi);
    }
    const [first, , , , last] = intents;

    expect(sandbox.stats()).toMatchObject({ paymentIntents: 3, paymentMethods: 3, charges: 3, refunds: 3 });

    const gone = await errorOf(() => stripe.paymentIntents.retrieve(first!.id));
    expect([gone.statusCode, gone.code]).toEqual([404, 'resource_missing']);
    expect((await stripe.charges.list({ payment_intent: first!.id })).data).toEqual([]);
    expect((await stripe.refunds.list({ payment_intent: first!.id })).data).toEqual([]);

    const kept = await stripe.paymentIntents.retrieve(last!.id);
    expect([kept.status, kept.amount]).toEqual(['succeeded', 1004]);
    expect((await stripe.charges.list({ payment_intent: last!.id })).data).toHaveLength(1);
    const refunds = await stripe.refunds.list({ payment_intent: last!.id });
    expect(refunds.data.map((r) => r.amount)).toEqual([100]);
  });

  it('refuses a limit below one', async () => {
    await expect(startSandbox({ maxObjects: 0 })).rejects.toThrow(/maxObjects/);
  });
});
