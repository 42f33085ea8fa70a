/**
 * Three-decimal currencies as Stripe documents them (docs.stripe.com/currencies#three-decimal): payment
 * intents and refunds take bhd, jod, kwd, omr and tnd in thousandths, but only with a last digit of 0.
 */
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cardOnly, errorOf, paidIntent, startSandbox, stripeFor, type Sandbox } from './helpers/fixtures.js';

describe('Three-decimal currencies', () => {
  let sandbox: Sandbox;
  let stripe: Stripe;

  beforeAll(async () => {
    sandbox = await startSandbox();
    stripe = stripeFor(sandbox);
  });
  afterAll(() => sandbox.close());

  function expectNotRounded(err: Stripe.errors.StripeError, param: string) {
    expect(err.statusCode).toBe(400);
    expect(err.type).toBe('StripeInvalidRequestError');
    expect(err.param).toBe(param);
    expect(err.message).toMatch(/kwd/);
    expect(err.message).toMatch(/divisible by 10/);
  }

  it('takes a kwd payment of 5120 and refunds it 1000, then the rest', async () => {
    const intent = await paidIntent(stripe, 5120, 'pm_card_visa', 'kwd');
    expect(intent).toMatchObject({ status: 'succeeded', amount: 5120, currency: 'kwd' });
    const first = await stripe.refunds.create({ payment_intent: intent.id, amount: 1000 });
    expect(first).toMatchObject({ amount: 1000, currency: 'kwd', status: 'succeeded' });
    const rest = await stripe.refunds.create({ payment_intent: intent.id });
    expect(rest.amount).toBe(4120);
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    expect(charge).toMatchObject({ amount_refunded: 5120, refunded: true });
  });

  it('refuses a payment intent of 5124 kwd, on create and on update', async () => {
    expectNotRounded(await errorOf(() => paidIntent(stripe, 5124, 'pm_card_visa', 'kwd')), 'amount');
    const made = await stripe.paymentIntents.create({ amount: 5120, currency: 'kwd', ...cardOnly });
    expectNotRounded(await errorOf(() => stripe.paymentIntents.update(made.id, { amount: 5121 })), 'amount');
    expect((await stripe.paymentIntents.retrieve(made.id)).amount).toBe(5120);
  });

  it('refuses a refund of 1005 of a kwd payment and refunds nothing', async () => {
    const intent = await paidIntent(stripe, 5120, 'pm_card_visa', 'kwd');
    expectNotRounded(
      await errorOf(() => stripe.refunds.create({ payment_intent: intent.id, amount: 1005 })),
      'amount',
    );
    expect((await stripe.refunds.list({ payment_intent: intent.id })).data).toEqual([]);
  });

  it("refuses a Checkout Session whose unit_amount does not end in 0, naming the line item's field", async () => {
    const line = (unit_amount: number): Stripe.Checkout.SessionCreateParams.LineItem => ({
      quantity: 1,
      price_data: { currency: 'kwd', unit_amount, product_data: { name: 'Dates' } },
    });
    const params = (items: Stripe.Checkout.SessionCreateParams.LineItem[]) => ({
      mode: 'payment' as const,
      success_url: 'https://shop.example/ok',
      cancel_url: 'https://shop.example/no',
      line_items: items,
    });
    expectNotRounded(
      await errorOf(() => stripe.checkout.sessions.create(params([line(1000), line(1001)]))),
      'line_items[1][price_data][unit_amount]',
    );
    const session = await stripe.checkout.sessions.create(params([line(5120), line(1000)]));
    expect(session.amount_total).toBe(6120);
    // The hosted page shows thousandths: 6.120 KWD, not 61.20.
    const html = await (await fetch(session.url as string)).text();
    expect(html).toMatch(/id="total">6\.120 KWD</);
    expect(html).toContain('5.120 KWD');
  });

  it('takes any amount in a two-decimal currency', async () => {
    const intent = await paidIntent(stripe, 5124, 'pm_card_visa', 'usd');
    const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 1005 });
    expect(refund.amount).toBe(1005);
  });
});
