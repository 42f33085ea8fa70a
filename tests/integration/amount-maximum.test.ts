/**
 * Stripe takes amounts of up to eight digits, and up to twelve in idr ("a value of 999999999999 for a charge of
 * 9,999,999,999.99 IDR", docs.stripe.com/currencies#minimum-and-maximum-charge-amounts). The contract capped every
 * amount at eight digits, so an Indonesian shop could not take a payment over Rp 999,999.99 (about 60 USD): the
 * validator refused it with 400. Twelve digits pass in idr now; more than eight in any other currency is still a
 * 400, named, before Stripe is asked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite');
});
afterAll(async () => {
  await svc?.stop();
});

const RP_1_500_000 = 150_000_000; // Rp 1,500,000.00, nine digits

describe('amounts of more than eight digits', () => {
  it('idr: a payment of Rp 1,500,000.00 is taken, refunded in part and in full', async () => {
    const paid = await postJson(`${svc.url}/payment-intent`, {
      amount: RP_1_500_000,
      currency: 'idr',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    expect(paid.status, paid.text).toBe(200);
    expect(paid.json.status).toBe('succeeded');
    const pi = paid.json.paymentIntentId as string;
    expect((await svc.deps.stripe.paymentIntents.retrieve(pi)).amount).toBe(RP_1_500_000);

    const part = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 100_000_000 });
    expect(part.status, part.text).toBe(200);
    const rest = await postJson(`${svc.url}/refund-async`, { payment_intent_id: pi, amount: 50_000_000 });
    expect(rest.status, rest.text).toBe(202);
  });

  it('idr: a checkout line of Rp 9,999,999,999.99, the twelve-digit maximum, is taken', async () => {
    const res = await postJson(`${svc.url}/create-checkout-session`, {
      line_items: [
        {
          price_data: { currency: 'idr', product_data: { name: 'Villa' }, unit_amount: 999_999_999_999 },
          quantity: 1,
        },
      ],
      success_url: 'https://shop.example/ok?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: 'https://shop.example/no',
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json.amount_total).toBe(999_999_999_999);
  });

  it('usd: nine digits are refused with 400 amount_too_large on the field, and Stripe is not asked', async () => {
    const before = (await svc.deps.stripe.paymentIntents.list({ limit: 100 })).data.length;
    const res = await postJson(`${svc.url}/payment-intent`, { amount: 100_000_000, currency: 'usd' });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ code: 'amount_too_large', param: 'amount' });
    expect(res.json.errors).toEqual([expect.objectContaining({ path: '/body/amount' })]);
    expect((await svc.deps.stripe.paymentIntents.list({ limit: 100 })).data).toHaveLength(before);

    const line = await postJson(`${svc.url}/create-checkout-session`, {
      line_items: [
        {
          price_data: { currency: 'usd', product_data: { name: 'Yacht' }, unit_amount: 100_000_000 },
          quantity: 1,
        },
      ],
      success_url: 'https://shop.example/ok',
      cancel_url: 'https://shop.example/no',
    });
    expect(line.status).toBe(400);
    expect(line.json).toMatchObject({ code: 'amount_too_large' });
    expect(line.json.errors).toEqual([
      expect.objectContaining({ path: '/body/line_items/0/price_data/unit_amount' }),
    ]);
  });

  it('usd: a refund of nine digits is refused with 400 amount_too_large on the field, on both paths, and Stripe is not asked', async () => {
    const paid = await postJson(`${svc.url}/payment-intent`, {
      amount: 5_000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    expect(paid.status, paid.text).toBe(200);
    const pi = paid.json.paymentIntentId as string;
    for (const path of ['/refund', '/refund-async']) {
      const res = await postJson(`${svc.url}${path}`, { payment_intent_id: pi, amount: 100_000_000 });
      expect(res.status, `${path}: ${res.text}`).toBe(400);
      expect(res.json).toMatchObject({ code: 'amount_too_large', param: 'amount' });
      expect(res.json.errors).toEqual([expect.objectContaining({ path: '/body/amount' })]);
    }
    expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data).toEqual([]);
    // Nothing was reserved: the whole payment can still be refunded.
    const all = await postJson(`${svc.url}/refund`, { payment_intent_id: pi });
    expect(all.status, all.text).toBe(200);
    expect(all.json.refund).toMatchObject({ amount: 5_000 });
  });

  it('idr: thirteen digits are refused by the contract', async () => {
    const res = await postJson(`${svc.url}/payment-intent`, { amount: 1_000_000_000_000, currency: 'idr' });
    expect(res.status).toBe(400);
    expect(res.json.errors).toEqual([expect.objectContaining({ path: '/body/amount' })]);
  });
});
