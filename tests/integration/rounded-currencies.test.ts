/**
 * Currencies whose amounts must end in zeros, end to end. Three-decimal currencies (bhd, jod, kwd, omr, tnd)
 * count thousandths (5120 kwd is 5.120 KWD) and Stripe wants their last digit 0
 * (docs.stripe.com/currencies#three-decimal). ISK and UGX are taken as two-decimal values whose last two digits
 * are 00 (5 ISK is an amount of 500; docs.stripe.com/currencies#special-cases), as fractions of them cannot be
 * charged. The service refuses any other amount with a 400 naming the field, before it reserves money or calls
 * Stripe.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateResponse } from '../helpers/contract.js';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { postgresAvailable } from '../helpers/services.js';
import { eventually, startTestService, type Db, type TestService } from '../helpers/service.js';

const dbs: Db[] = ['sqlite', ...((await postgresAvailable()) ? (['postgres'] as const) : [])];

interface Family {
  label: string;
  /** Every amount in these currencies is a multiple of this. */
  step: number;
  /** Payment intents are tried in each; the first is the one paid and refunded. */
  currencies: [string, ...string[]];
  paid: number;
  firstRefund: number;
  oddRefund: number;
  oddIntent: number;
  roundIntent: number;
  checkout: { currency: string; name: string; unitAmount: number; oddUnitAmount: number };
}

const families: Family[] = [
  {
    label: 'three-decimal currencies',
    step: 10,
    currencies: ['kwd', 'bhd', 'jod', 'omr', 'tnd'],
    paid: 5120,
    firstRefund: 1000,
    oddRefund: 1005,
    oddIntent: 5124,
    roundIntent: 2500,
    checkout: { currency: 'kwd', name: 'Dates', unitAmount: 5120, oddUnitAmount: 5125 },
  },
  {
    label: 'isk and ugx',
    step: 100,
    currencies: ['isk', 'ugx'],
    paid: 100_000,
    firstRefund: 30_000,
    oddRefund: 50,
    oddIntent: 100_050,
    roundIntent: 100_000,
    checkout: { currency: 'ugx', name: 'Coffee', unitAmount: 500_000, oddUnitAmount: 500_050 },
  },
];

const cases = families.flatMap((family) => dbs.map((db) => [family.label, db, { ...family, db }] as const));

describe.each(cases)('%s on %s', (_label, _db, family) => {
  const { db, step, paid, firstRefund, oddRefund, oddIntent, roundIntent, checkout } = family;
  const currency = family.currencies[0];
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService(db);
  });
  afterAll(async () => {
    await svc?.stop();
  });

  const stripeRefunds = async (pi: string) =>
    (await svc.deps.stripe.refunds.list({ payment_intent: pi, limit: 100 })).data;

  function expectNotRounded(res: Awaited<ReturnType<typeof postJson>>, param: string) {
    const multiple = new RegExp(`multiple of ${step}\\b`);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({ status: 400, code: 'amount_not_rounded', param });
    expect(res.json.detail).toMatch(multiple);
    expect(res.json.errors).toEqual([
      { path: `/body/${param.replace(/\./g, '/')}`, message: expect.stringMatching(multiple) },
    ]);
  }

  it(`a payment of ${paid} ${currency} is refunded ${firstRefund}, then the rest; the ledger and Stripe agree`, async () => {
    const pi = await paidIntent(svc.url, paid, { currency });
    const intent = await getJson(`${svc.url}/payment-intent/${pi}`);
    expect(intent.json).toMatchObject({ amount: paid, currency, status: 'succeeded', amount_refunded: 0 });

    const first = await postJson(`${svc.url}/refund`, {
      payment_intent_id: pi,
      amount: firstRefund,
      request_id: `${currency}-first-${db}`,
    });
    expect(first.status).toBe(200);
    expect(first.json.refund).toMatchObject({ amount: firstRefund, currency, status: 'succeeded' });
    expect(validateResponse('createRefund', 200, first.json)).toEqual([]);

    // The rest, queued: what is left stays a multiple of the step.
    const rest = await postJson(`${svc.url}/refund-async`, {
      payment_intent_id: pi,
      request_id: `${currency}-rest-${db}`,
    });
    expect(rest.status).toBe(202);
    const settled = await eventually(
      () => getJson(`${svc.url}/refund-status/${currency}-rest-${db}`),
      (r) => r.json.status === 'succeeded',
    );
    expect(settled.json).toMatchObject({ status: 'succeeded', amount: paid - firstRefund });

    const after = await getJson(`${svc.url}/payment-intent/${pi}`);
    expect(after.json).toMatchObject({ amount: paid, currency, amount_refunded: paid });
    const atStripe = await stripeRefunds(pi);
    expect(atStripe.map((r) => [r.amount, r.currency]).sort((a, b) => Number(a[0]) - Number(b[0]))).toEqual([
      [firstRefund, currency],
      [paid - firstRefund, currency],
    ]);
    expect(atStripe.map((r) => r.id).sort()).toEqual(
      [(first.json.refund as { id: string }).id, settled.json.refund_id as string].sort(),
    );
  });

  it(`POST /payment-intent refuses ${oddIntent} ${family.currencies.join(', ')} with 400 on amount, and Stripe makes no intent`, async () => {
    for (const c of family.currencies) {
      const res = await postJson(`${svc.url}/payment-intent`, {
        amount: oddIntent,
        currency: c,
        payment_method: 'pm_card_visa',
        confirm: true,
      });
      expectNotRounded(res, 'amount');
    }
    const intents = await svc.deps.stripe.paymentIntents.list({ limit: 100 });
    expect(intents.data.filter((p) => p.amount === oddIntent)).toEqual([]);
  });

  it(`POST /payment-intent takes ${roundIntent} in ${family.currencies.join(', ')}, and refuses it plus half a step`, async () => {
    for (const c of family.currencies) {
      const ok = await postJson(`${svc.url}/payment-intent`, { amount: roundIntent, currency: c });
      expect(ok.status, c).toBe(200);
      const odd = await postJson(`${svc.url}/payment-intent`, {
        amount: roundIntent + step / 2,
        currency: c,
      });
      expectNotRounded(odd, 'amount');
    }
  });

  it(`POST /create-checkout-session refuses a unit_amount of ${checkout.oddUnitAmount} ${checkout.currency}, naming the line item`, async () => {
    const item = (unit_amount: number) => ({
      price_data: { currency: checkout.currency, product_data: { name: checkout.name }, unit_amount },
      quantity: 2,
    });
    const base = { success_url: 'https://shop.example/ok', cancel_url: 'https://shop.example/no' };
    const bad = await postJson(`${svc.url}/create-checkout-session`, {
      ...base,
      line_items: [item(checkout.unitAmount), item(checkout.oddUnitAmount)],
    });
    expectNotRounded(bad, 'line_items.1.price_data.unit_amount');
    const sessions = await svc.deps.stripe.checkout.sessions.list({ limit: 100 });
    expect(sessions.data).toEqual([]);

    const ok = await postJson(`${svc.url}/create-checkout-session`, {
      ...base,
      line_items: [item(checkout.unitAmount)],
    });
    expect(ok.status).toBe(200);
    expect(ok.json.amount_total).toBe(2 * checkout.unitAmount);
  });

  for (const path of ['/refund', '/refund-async'] as const) {
    it(`POST ${path} refuses ${oddRefund} of a payment in ${currency}: nothing reserved, Stripe not called`, async () => {
      const pi = await paidIntent(svc.url, paid, { currency });
      const requestId = `${currency}-odd${path.replace('/', '-')}-${db}`;
      const res = await postJson(`${svc.url}${path}`, {
        payment_intent_id: pi,
        amount: oddRefund,
        request_id: requestId,
      });
      expectNotRounded(res, 'amount');
      expect((await getJson(`${svc.url}/refund-status/${requestId}`)).status).toBe(404);
      expect(await stripeRefunds(pi)).toEqual([]);
      const intent = await getJson(`${svc.url}/payment-intent/${pi}`);
      expect(intent.json).toMatchObject({ amount_refunded: 0 });
      // The whole payment can still be refunded.
      const all = await postJson(`${svc.url}${path}`, { payment_intent_id: pi, amount: paid });
      expect(all.status).toBe(path === '/refund' ? 200 : 202);
    });
  }
});

describe.each(dbs)('a two-decimal currency on %s', (db) => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService(db);
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('still takes any amount', async () => {
    const pi = await paidIntent(svc.url, 5124, { currency: 'usd' });
    const res = await postJson(`${svc.url}/refund-async`, { payment_intent_id: pi, amount: 1005 });
    expect(res.status).toBe(202);
  });
});
