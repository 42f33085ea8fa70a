/**
 * The Python service passed `currency` through to Stripe, which takes a code in any case (`SGD` is `sgd`), so its
 * clients may send upper-case codes. They are taken here too and written in lower case before anything is checked
 * (an upper-case `IDR` gets idr's twelve digits, an upper-case `KWD` kwd's steps of 10) or sent to Stripe.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateResponse } from '../helpers/contract.js';
import { getJson, postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

const item = (currency: string, unit_amount: number, name = 'Lamp') => ({
  price_data: { currency, product_data: { name }, unit_amount },
  quantity: 1,
});
const checkout = (...line_items: ReturnType<typeof item>[]) => ({
  line_items,
  success_url: 'https://shop.example.com/ok?session_id={CHECKOUT_SESSION_ID}',
  cancel_url: 'https://shop.example.com/no',
});

describe('currency codes in upper case, as the Python service took them', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('sqlite');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('makes a payment intent in the currency, written in lower case', async () => {
    const made = await postJson(`${svc.url}/payment-intent`, { amount: 10000, currency: 'SGD' });
    expect(made.status).toBe(200);
    expect(validateResponse('createPaymentIntent', 200, made.json)).toEqual([]);
    const id = made.json.paymentIntentId as string;
    const read = await getJson(`${svc.url}/payment-intent/${id}`);
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({ amount: 10000, currency: 'sgd' });
    expect((await svc.deps.stripe.paymentIntents.retrieve(id)).currency).toBe('sgd');
  });

  it("applies the currency's own rules whatever its case", async () => {
    // idr takes twelve digits, the others eight.
    const idr = await postJson(`${svc.url}/payment-intent`, { amount: 150_000_000_00, currency: 'IDR' });
    expect(idr.status).toBe(200);
    // kwd has three decimals: its amounts end in 0.
    const kwd = await postJson(`${svc.url}/payment-intent`, { amount: 5125, currency: 'Kwd' });
    expect(kwd.status).toBe(400);
    expect(kwd.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(kwd.json).toMatchObject({ code: 'amount_not_rounded', param: 'amount' });
    expect(kwd.json.detail).toContain('kwd');
    const unknown = await postJson(`${svc.url}/payment-intent`, { amount: 1000, currency: 'XYZ' });
    expect(unknown.status).toBe(400);
    expect(unknown.json).toMatchObject({ code: 'currency_not_supported', param: 'currency' });
  });

  it('makes a checkout session whose line items name one currency in different cases', async () => {
    const made = await postJson(
      `${svc.url}/create-checkout-session`,
      checkout(item('SGD', 2500), item('sgd', 1500, 'Bulb')),
    );
    expect(made.status).toBe(200);
    expect(validateResponse('createCheckoutSession', 200, made.json)).toEqual([]);
    expect(made.json).toMatchObject({ amount_total: 4000, currency: 'sgd' });
    const read = await getJson(`${svc.url}/checkout-session?session_id=${made.json.id as string}`);
    expect(read.json).toMatchObject({ amount_total: 4000, currency: 'sgd' });

    const mixed = await postJson(
      `${svc.url}/create-checkout-session`,
      checkout(item('SGD', 2500), item('usd', 1500, 'Bulb')),
    );
    expect(mixed.status).toBe(400);
    expect(mixed.json.code).toBe('currency_mismatch');
  });
});
