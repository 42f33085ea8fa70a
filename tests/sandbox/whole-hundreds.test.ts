/**
 * ISK and UGX as Stripe documents them (docs.stripe.com/currencies#special-cases): both became zero-decimal
 * currencies, but the API still takes their amounts as two-decimal values whose last two digits are 00 (5 ISK is
 * an amount of 500), and fractions of them cannot be charged.
 */
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cardOnly, errorOf, paidIntent, startSandbox, stripeFor, type Sandbox } from './helpers/fixtures.js';

describe('ISK and UGX: two-decimal amounts in whole units', () => {
  let sandbox: Sandbox;
  let stripe: Stripe;

  beforeAll(async () => {
    sandbox = await startSandbox();
    stripe = stripeFor(sandbox);
  });
  afterAll(() => sandbox.close());

  function expectWholeUnits(err: Stripe.errors.StripeError, param: string, currency: string) {
    expect(err.statusCode).toBe(400);
    expect(err.type).toBe('StripeInvalidRequestError');
    expect(err.param).toBe(param);
    expect(err.message).toContain(currency);
    expect(err.message).toMatch(/divisible by 100/);
  }

  it('takes an isk payment of 150000 (1,500 ISK) and refunds it 50000, then the rest', async () => {
    const intent = await paidIntent(stripe, 150_000, 'pm_card_visa', 'isk');
    expect(intent).toMatchObject({ status: 'succeeded', amount: 150_000, currency: 'isk' });
    const first = await stripe.refunds.create({ payment_intent: intent.id, amount: 50_000 });
    expect(first).toMatchObject({ amount: 50_000, currency: 'isk', status: 'succeeded' });
    const rest = await stripe.refunds.create({ payment_intent: intent.id });
    expect(rest.amount).toBe(100_000);
  });

  it('refuses a payment intent that charges a fraction of a krona or shilling, on create and on update', async () => {
    for (const currency of ['isk', 'ugx']) {
      expectWholeUnits(
        await errorOf(() => paidIntent(stripe, 100_050, 'pm_card_visa', currency)),
        'amount',
        currency,
      );
      const made = await stripe.paymentIntents.create({ amount: 100_000, currency, ...cardOnly });
      expectWholeUnits(
        await errorOf(() => stripe.paymentIntents.update(made.id, { amount: 100_001 })),
        'amount',
        currency,
      );
      expect((await stripe.paymentIntents.retrieve(made.id)).amount).toBe(100_000);
    }
  });

  it('refuses a refund of a fraction of a krona and refunds nothing', async () => {
    const intent = await paidIntent(stripe, 100_000, 'pm_card_visa', 'isk');
    expectWholeUnits(
      await errorOf(() => stripe.refunds.create({ payment_intent: intent.id, amount: 50 })),
      'amount',
      'isk',
    );
    expect((await stripe.refunds.list({ payment_intent: intent.id })).data).toEqual([]);
  });

  it('refuses a Checkout Session unit_amount with a fraction, and shows whole shillings on the page', async () => {
    const line = (unit_amount: number): Stripe.Checkout.SessionCreateParams.LineItem => ({
      quantity: 1,
      price_data: { currency: 'ugx', unit_amount, product_data: { name: 'Coffee' } },
    });
    const params = (items: Stripe.Checkout.SessionCreateParams.LineItem[]) => ({
      mode: 'payment' as const,
      success_url: 'https://shop.example/ok',
      cancel_url: 'https://shop.example/no',
      line_items: items,
    });
    expectWholeUnits(
      await errorOf(() => stripe.checkout.sessions.create(params([line(500_000), line(500_050)]))),
      'line_items[1][price_data][unit_amount]',
      'ugx',
    );
    const session = await stripe.checkout.sessions.create(params([line(500_000), line(250_000)]));
    expect(session.amount_total).toBe(750_000);
    // 750000 is 7,500 UGX (two decimals, always 00), not 750,000 UGX.
    const html = await (await fetch(session.url as string)).text();
    expect(html).toMatch(/id="total">7,500 UGX</);
    expect(html).toContain('5,000 UGX');
  });
});
