/**
 * ISK and UGX end to end: Stripe takes their amounts as two-decimal values whose last two digits are 00
 * (5 ISK is an amount of 500; docs.stripe.com/currencies#special-cases), and cannot charge fractions of them.
 * The service refuses any other amount with a 400 naming the field, before it reserves money or calls Stripe.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { postgresAvailable } from '../helpers/services.js';
import { eventually, startTestService, type Db, type TestService } from '../helpers/service.js';

const dbs: Db[] = ['sqlite', ...((await postgresAvailable()) ? (['postgres'] as const) : [])];

describe.each(dbs)('isk and ugx on %s', (db) => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService(db);
  });
  afterAll(async () => {
    await svc?.stop();
  });

  const stripeRefunds = async (pi: string) =>
    (await svc.deps.stripe.refunds.list({ payment_intent: pi, limit: 100 })).data;

  function expectWholeUnits(res: Awaited<ReturnType<typeof postJson>>, param: string) {
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({ status: 400, code: 'amount_not_rounded', param });
    expect(res.json.detail).toMatch(/multiple of 100/);
    expect(res.json.errors).toEqual([
      { path: `/body/${param.replace(/\./g, '/')}`, message: expect.stringMatching(/multiple of 100/) },
    ]);
  }

  it('POST /payment-intent refuses 100050 isk and ugx with 400 on amount, and Stripe makes no intent', async () => {
    for (const currency of ['isk', 'ugx']) {
      const res = await postJson(`${svc.url}/payment-intent`, {
        amount: 100_050,
        currency,
        payment_method: 'pm_card_visa',
        confirm: true,
      });
      expectWholeUnits(res, 'amount');
    }
    const intents = await svc.deps.stripe.paymentIntents.list({ limit: 100 });
    expect(intents.data.filter((p) => p.amount === 100_050)).toEqual([]);
    const ok = await postJson(`${svc.url}/payment-intent`, { amount: 100_000, currency: 'ugx' });
    expect(ok.status).toBe(200);
  });

  it('POST /create-checkout-session refuses a unit_amount of 500050 ugx, naming the line item', async () => {
    const item = (unit_amount: number) => ({
      price_data: { currency: 'ugx', product_data: { name: 'Coffee' }, unit_amount },
      quantity: 2,
    });
    const base = { success_url: 'https://shop.example/ok', cancel_url: 'https://shop.example/no' };
    const before = (await svc.deps.stripe.checkout.sessions.list({ limit: 100 })).data.length;
    const bad = await postJson(`${svc.url}/create-checkout-session`, {
      ...base,
      line_items: [item(500_000), item(500_050)],
    });
    expectWholeUnits(bad, 'line_items.1.price_data.unit_amount');
    expect((await svc.deps.stripe.checkout.sessions.list({ limit: 100 })).data).toHaveLength(before);
  });

  for (const path of ['/refund', '/refund-async'] as const) {
    it(`POST ${path} refuses 50 of an isk payment: nothing reserved, Stripe not called`, async () => {
      const pi = await paidIntent(svc.url, 100_000, { currency: 'isk' });
      const requestId = `isk-odd${path.replace('/', '-')}-${db}`;
      const res = await postJson(`${svc.url}${path}`, {
        payment_intent_id: pi,
        amount: 50,
        request_id: requestId,
      });
      expectWholeUnits(res, 'amount');
      expect((await getJson(`${svc.url}/refund-status/${requestId}`)).status).toBe(404);
      expect(await stripeRefunds(pi)).toEqual([]);
      const intent = await getJson(`${svc.url}/payment-intent/${pi}`);
      expect(intent.json).toMatchObject({ amount_refunded: 0 });
    });
  }

  it('an isk payment is refunded 30000, then the rest; the ledger and Stripe agree', async () => {
    const pi = await paidIntent(svc.url, 100_000, { currency: 'isk' });
    const first = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 30_000 });
    expect(first.status).toBe(200);
    const rest = await postJson(`${svc.url}/refund-async`, {
      payment_intent_id: pi,
      request_id: `isk-rest-${db}`,
    });
    expect(rest.status).toBe(202);
    const settled = await eventually(
      () => getJson(`${svc.url}/refund-status/isk-rest-${db}`),
      (r) => r.json.status === 'succeeded',
    );
    expect(settled.json).toMatchObject({ amount: 70_000 });
    expect((await stripeRefunds(pi)).map((r) => r.amount).sort()).toEqual([30_000, 70_000]);
    const after = await getJson(`${svc.url}/payment-intent/${pi}`);
    expect(after.json).toMatchObject({ amount: 100_000, currency: 'isk', amount_refunded: 100_000 });
  });
});
