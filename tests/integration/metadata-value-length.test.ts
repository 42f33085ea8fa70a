/**
 * Stripe's metadata values hold up to 500 characters, and the sandbox counts a character outside the Basic
 * Multilingual Plane, such as an emoji, as two. The contract's `maxLength: 500` counts code points, so a
 * value of 300 emoji passed the contract and was refused by the sandbox: POST /refund-async answered 202 for a refund
 * its worker could only fail, and POST /refund burnt its request_id on a failed refund. Such a value must be
 * refused up front, naming the field, with nothing recorded or sent to Stripe.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { getJson, paidIntent, postJson } from '../helpers/http.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite');
});
afterAll(async () => {
  await svc?.stop();
});

const tooLong = { order_id: 'ord_1', note: '😀'.repeat(300) }; // 300 code points, 600 UTF-16 units
const atLimit = { note: '😀'.repeat(250) }; // 500 UTF-16 units

function expectValueTooLong(res: Awaited<ReturnType<typeof postJson>>) {
  expect(res.status).toBe(400);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.json).toMatchObject({ status: 400, code: 'metadata_value_too_long', param: 'metadata' });
  expect(res.json.errors).toEqual([{ path: '/body/metadata/note', message: expect.stringMatching(/500/) }]);
}

describe('a metadata value longer than Stripe allows', () => {
  it.each(['/refund', '/refund-async'] as const)(
    '%s → 400 on /body/metadata/note: nothing reserved, no refund at Stripe',
    async (path) => {
      const pi = await paidIntent(svc.url, 1000);
      const requestId = `long-meta-${path.slice(1)}`;
      const res = await postJson(`${svc.url}${path}`, {
        payment_intent_id: pi,
        amount: 100,
        request_id: requestId,
        metadata: tooLong,
      });
      expectValueTooLong(res);
      expect((await getJson(`${svc.url}/refund-status/${requestId}`)).status).toBe(404);
      expect((await getJson(`${svc.url}/payment-intent/${pi}`)).json).toMatchObject({ amount_refunded: 0 });
      expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data).toEqual([]);
    },
  );

  it('POST /payment-intent and POST /create-checkout-session → 400 on the value, and Stripe makes nothing', async () => {
    const intentsBefore = (await svc.deps.stripe.paymentIntents.list({ limit: 100 })).data.length;
    expectValueTooLong(
      await postJson(`${svc.url}/payment-intent`, { amount: 1000, currency: 'usd', metadata: tooLong }),
    );
    expect((await svc.deps.stripe.paymentIntents.list({ limit: 100 })).data).toHaveLength(intentsBefore);

    const sessionsBefore = (await svc.deps.stripe.checkout.sessions.list({ limit: 100 })).data.length;
    expectValueTooLong(
      await postJson(`${svc.url}/create-checkout-session`, {
        line_items: [
          { price_data: { currency: 'usd', product_data: { name: 'Tea' }, unit_amount: 1000 }, quantity: 1 },
        ],
        success_url: 'https://shop.example/ok',
        cancel_url: 'https://shop.example/no',
        metadata: tooLong,
      }),
    );
    expect((await svc.deps.stripe.checkout.sessions.list({ limit: 100 })).data).toHaveLength(sessionsBefore);
  });

  it('a value of exactly 500 UTF-16 units is taken, and the queued refund succeeds', async () => {
    const pi = await paidIntent(svc.url, 1000);
    const intent = await postJson(`${svc.url}/payment-intent`, {
      amount: 1000,
      currency: 'usd',
      metadata: atLimit,
    });
    expect(intent.status).toBe(200);
    const res = await postJson(`${svc.url}/refund-async`, {
      payment_intent_id: pi,
      amount: 100,
      request_id: 'at-limit-meta',
      metadata: atLimit,
    });
    expect(res.status).toBe(202);
    const done = await eventually(
      () => getJson(`${svc.url}/refund-status/at-limit-meta`),
      (r) => r.json.status === 'succeeded' || r.json.status === 'failed',
    );
    expect(done.json.status).toBe('succeeded');
  });
});
