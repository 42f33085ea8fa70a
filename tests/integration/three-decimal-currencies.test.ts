/**
 * Three-decimal currencies (bhd, jod, kwd, omr, tnd) end to end: amounts count thousandths (5120 kwd is
 * 5.120 KWD), and Stripe wants their last digit 0 (docs.stripe.com/currencies#three-decimal). The service
 * refuses any other amount with a 400 naming the field, before it reserves money or calls Stripe.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateResponse } from '../helpers/contract.js';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { postgresAvailable } from '../helpers/services.js';
import { eventually, startTestService, type Db, type TestService } from '../helpers/service.js';

const dbs: Db[] = ['sqlite', ...((await postgresAvailable()) ? (['postgres'] as const) : [])];

describe.each(dbs)('three-decimal currencies on %s', (db) => {
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
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({ status: 400, code: 'amount_not_rounded', param });
    expect(res.json.detail).toMatch(/multiple of 10/);
    expect(res.json.errors).toEqual([
      { path: `/body/${param.replace(/\./g, '/')}`, message: expect.stringMatching(/multiple of 10/) },
    ]);
  }

  it('a kwd payment of 5120 (5.120 KWD) is refunded 1000, then the rest; the ledger and Stripe agree', async () => {
    const pi = await paidIntent(svc.url, 5120, { currency: 'kwd' });
    const intent = await getJson(`${svc.url}/payment-intent/${pi}`);
    expect(intent.json).toMatchObject({
      amount: 5120,
      currency: 'kwd',
      status: 'succeeded',
      amount_refunded: 0,
    });

    const first = await postJson(`${svc.url}/refund`, {
      payment_intent_id: pi,
      amount: 1000,
      request_id: `kwd-first-${db}`,
    });
    expect(first.status).toBe(200);
    expect(first.json.refund).toMatchObject({ amount: 1000, currency: 'kwd', status: 'succeeded' });
    expect(validateResponse('createRefund', 200, first.json)).toEqual([]);

    // The rest, queued: what is left (4120) stays a multiple of 10.
    const rest = await postJson(`${svc.url}/refund-async`, {
      payment_intent_id: pi,
      request_id: `kwd-rest-${db}`,
    });
    expect(rest.status).toBe(202);
    const settled = await eventually(
      () => getJson(`${svc.url}/refund-status/kwd-rest-${db}`),
      (r) => r.json.status === 'succeeded',
    );
    expect(settled.json).toMatchObject({ status: 'succeeded', amount: 4120 });

    const after = await getJson(`${svc.url}/payment-intent/${pi}`);
    expect(after.json).toMatchObject({ amount: 5120, currency: 'kwd', amount_refunded: 5120 });
    const atStripe = await stripeRefunds(pi);
    expect(atStripe.map((r) => [r.amount, r.currency]).sort()).toEqual([
      [1000, 'kwd'],
      [4120, 'kwd'],
    ]);
    expect(atStripe.map((r) => r.id).sort()).toEqual(
      [(first.json.refund as { id: string }).id, settled.json.refund_id as string].sort(),
    );
  });

  it('POST /payment-intent refuses 5124 kwd with 400 on amount, and Stripe makes no intent', async () => {
    const res = await postJson(`${svc.url}/payment-intent`, {
      amount: 5124,
      currency: 'kwd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    expectNotRounded(res, 'amount');
    const intents = await svc.deps.stripe.paymentIntents.list({ limit: 100 });
    expect(intents.data.filter((p) => p.amount === 5124)).toEqual([]);
  });

  it('POST /payment-intent takes the other four three-decimal currencies, and refuses their odd amounts', async () => {
    for (const currency of ['bhd', 'jod', 'omr', 'tnd']) {
      const ok = await postJson(`${svc.url}/payment-intent`, { amount: 2500, currency });
      expect(ok.status, currency).toBe(200);
      const odd = await postJson(`${svc.url}/payment-intent`, { amount: 2505, currency });
      expectNotRounded(odd, 'amount');
    }
  });

  it('POST /create-checkout-session refuses a unit_amount of 5125 kwd, naming the line item', async () => {
    const item = (unit_amount: number) => ({
      price_data: { currency: 'kwd', product_data: { name: 'Dates' }, unit_amount },
      quantity: 2,
    });
    const base = { success_url: 'https://shop.example/ok', cancel_url: 'https://shop.example/no' };
    const bad = await postJson(`${svc.url}/create-checkout-session`, {
      ...base,
      line_items: [item(5120), item(5125)],
    });
    expectNotRounded(bad, 'line_items.1.price_data.unit_amount');
    const sessions = await svc.deps.stripe.checkout.sessions.list({ limit: 100 });
    expect(sessions.data).toEqual([]);

    const ok = await postJson(`${svc.url}/create-checkout-session`, { ...base, line_items: [item(5120)] });
    expect(ok.status).toBe(200);
    expect(ok.json.amount_total).toBe(10240);
  });

  for (const path of ['/refund', '/refund-async'] as const) {
    it(`POST ${path} refuses 1005 of a kwd payment: nothing reserved, Stripe not called`, async () => {
      const pi = await paidIntent(svc.url, 5120, { currency: 'kwd' });
      const requestId = `kwd-odd${path.replace('/', '-')}-${db}`;
      const res = await postJson(`${svc.url}${path}`, {
        payment_intent_id: pi,
        amount: 1005,
        request_id: requestId,
      });
      expectNotRounded(res, 'amount');
      expect((await getJson(`${svc.url}/refund-status/${requestId}`)).status).toBe(404);
      expect(await stripeRefunds(pi)).toEqual([]);
      const intent = await getJson(`${svc.url}/payment-intent/${pi}`);
      expect(intent.json).toMatchObject({ amount_refunded: 0 });
      // The whole payment can still be refunded.
      const all = await postJson(`${svc.url}${path}`, { payment_intent_id: pi, amount: 5120 });
      expect(all.status).toBe(path === '/refund' ? 200 : 202);
    });
  }

  it('a two-decimal currency still takes any amount', async () => {
    const pi = await paidIntent(svc.url, 5124, { currency: 'usd' });
    const res = await postJson(`${svc.url}/refund-async`, { payment_intent_id: pi, amount: 1005 });
    expect(res.status).toBe(202);
  });
});
