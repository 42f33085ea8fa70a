/**
 * Currencies whose amounts must end in zeros, as Stripe documents them. Three-decimal currencies
 * (docs.stripe.com/currencies#three-decimal): payment intents and refunds take bhd, jod, kwd, omr and tnd in
 * thousandths, but only with a last digit of 0. ISK and UGX (docs.stripe.com/currencies#special-cases): both
 * became zero-decimal currencies, but the API still takes their amounts as two-decimal values whose last two
 * digits are 00 (5 ISK is an amount of 500), and fractions of them cannot be charged.
 */
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cardOnly, errorOf, paidIntent, startSandbox, stripeFor, type Sandbox } from './helpers/fixtures.js';

type LineItem = Stripe.Checkout.SessionCreateParams.LineItem;

interface Family {
  label: string;
  /** Every amount in these currencies is a multiple of this. */
  step: number;
  /** Payment intents are refused in each; the first is the one paid and refunded. */
  currencies: [string, ...string[]];
  paid: number;
  firstRefund: number;
  oddRefund: number;
  intent: { round: number; odd: number; oddUpdate: number };
  checkout: {
    currency: string;
    name: string;
    refused: [number, number];
    taken: [number, number];
    /** The total on the hosted page, and the first line's amount as shown there. */
    shown: { total: RegExp; first: string };
  };
}

const families: Family[] = [
  {
    label: 'Three-decimal currencies',
    step: 10,
    currencies: ['kwd'],
    paid: 5120,
    firstRefund: 1000,
    oddRefund: 1005,
    intent: { round: 5120, odd: 5124, oddUpdate: 5121 },
    checkout: {
      currency: 'kwd',
      name: 'Dates',
      refused: [1000, 1001],
      taken: [5120, 1000],
      // Thousandths: 6.120 KWD, not 61.20.
      shown: { total: /id="total">6\.120 KWD</, first: '5.120 KWD' },
    },
  },
  {
    label: 'ISK and UGX: two-decimal amounts in whole units',
    step: 100,
    currencies: ['isk', 'ugx'],
    paid: 150_000,
    firstRefund: 50_000,
    oddRefund: 50,
    intent: { round: 100_000, odd: 100_050, oddUpdate: 100_001 },
    checkout: {
      currency: 'ugx',
      name: 'Coffee',
      refused: [500_000, 500_050],
      taken: [500_000, 250_000],
      // 750000 is 7,500 UGX (two decimals, always 00), not 750,000 UGX.
      shown: { total: /id="total">7,500 UGX</, first: '5,000 UGX' },
    },
  },
];

// One sandbox for every case: each test looks only at the intents, refunds and sessions it makes.
let sandbox: Sandbox;
let stripe: Stripe;

beforeAll(async () => {
  sandbox = await startSandbox();
  stripe = stripeFor(sandbox);
});
afterAll(() => sandbox.close());

describe.each(families.map((family) => [family.label, family] as const))('%s', (_label, family) => {
  const { step, paid, firstRefund, oddRefund, intent, checkout } = family;
  const currency = family.currencies[0];

  function expectNotRounded(err: Stripe.errors.StripeError, param: string, inCurrency: string) {
    expect(err.statusCode).toBe(400);
    expect(err.type).toBe('StripeInvalidRequestError');
    expect(err.param).toBe(param);
    expect(err.message).toContain(inCurrency);
    expect(err.message).toMatch(new RegExp(`divisible by ${step}\\b`));
  }

  it(`takes a payment of ${paid} ${currency} and refunds it ${firstRefund}, then the rest`, async () => {
    const paidIn = await paidIntent(stripe, paid, 'pm_card_visa', currency);
    expect(paidIn).toMatchObject({ status: 'succeeded', amount: paid, currency });
    const first = await stripe.refunds.create({ payment_intent: paidIn.id, amount: firstRefund });
    expect(first).toMatchObject({ amount: firstRefund, currency, status: 'succeeded' });
    const rest = await stripe.refunds.create({ payment_intent: paidIn.id });
    expect(rest.amount).toBe(paid - firstRefund);
    const charge = await stripe.charges.retrieve(paidIn.latest_charge as string);
    expect(charge).toMatchObject({ amount_refunded: paid, refunded: true });
  });

  it(`refuses a payment intent of ${intent.odd} ${family.currencies.join(' or ')}, on create and on update`, async () => {
    for (const c of family.currencies) {
      expectNotRounded(await errorOf(() => paidIntent(stripe, intent.odd, 'pm_card_visa', c)), 'amount', c);
      const made = await stripe.paymentIntents.create({ amount: intent.round, currency: c, ...cardOnly });
      expectNotRounded(
        await errorOf(() => stripe.paymentIntents.update(made.id, { amount: intent.oddUpdate })),
        'amount',
        c,
      );
      expect((await stripe.paymentIntents.retrieve(made.id)).amount).toBe(intent.round);
    }
  });

  it(`refuses a refund of ${oddRefund} of a payment in ${currency} and refunds nothing`, async () => {
    const paidIn = await paidIntent(stripe, intent.round, 'pm_card_visa', currency);
    expectNotRounded(
      await errorOf(() => stripe.refunds.create({ payment_intent: paidIn.id, amount: oddRefund })),
      'amount',
      currency,
    );
    expect((await stripe.refunds.list({ payment_intent: paidIn.id })).data).toEqual([]);
  });

  it(`refuses a Checkout Session unit_amount of ${checkout.refused[1]} ${checkout.currency}, naming the line item's field, and shows the total on the page`, async () => {
    const line = (unit_amount: number): LineItem => ({
      quantity: 1,
      price_data: { currency: checkout.currency, unit_amount, product_data: { name: checkout.name } },
    });
    const params = (amounts: number[]) => ({
      mode: 'payment' as const,
      success_url: 'https://shop.example/ok',
      cancel_url: 'https://shop.example/no',
      line_items: amounts.map(line),
    });
    expectNotRounded(
      await errorOf(() => stripe.checkout.sessions.create(params(checkout.refused))),
      'line_items[1][price_data][unit_amount]',
      checkout.currency,
    );
    const session = await stripe.checkout.sessions.create(params(checkout.taken));
    expect(session.amount_total).toBe(checkout.taken[0] + checkout.taken[1]);
    const html = await (await fetch(session.url as string)).text();
    expect(html).toMatch(checkout.shown.total);
    expect(html).toContain(checkout.shown.first);
  });
});

describe('A two-decimal currency', () => {
  it('takes any amount', async () => {
    const intent = await paidIntent(stripe, 5124, 'pm_card_visa', 'usd');
    const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 1005 });
    expect(refund.amount).toBe(1005);
  });
});
