/**
 * Stripe refuses an e-mail address without a dot in its domain (`buyer@localhost`) with 400 `email_invalid`,
 * on a payment intent's `receipt_email` as on a checkout session's `customer_email`. The contract's
 * `format: email` let such an address through, so the client got Stripe's 400 after a round trip, without
 * `errors[]`. The contract refuses it now, naming the field, and Stripe is not asked.
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

const session = (customer_email: string) => ({
  line_items: [
    { price_data: { currency: 'usd', product_data: { name: 'Tea' }, unit_amount: 1000 }, quantity: 1 },
  ],
  success_url: 'https://shop.example/ok?session_id={CHECKOUT_SESSION_ID}',
  cancel_url: 'https://shop.example/no',
  customer_email,
});

function expectRefused(res: Awaited<ReturnType<typeof postJson>>, field: string) {
  expect(res.status).toBe(400);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.json.errors).toEqual([
    expect.objectContaining({ path: `/body/${field}`, code: 'pattern.openapi.validation' }),
  ]);
}

describe('an e-mail address Stripe refuses', () => {
  it('POST /payment-intent with receipt_email buyer@localhost → 400 on /body/receipt_email; no intent made', async () => {
    const before = (await svc.deps.stripe.paymentIntents.list({ limit: 100 })).data.length;
    expectRefused(
      await postJson(`${svc.url}/payment-intent`, {
        amount: 1000,
        currency: 'usd',
        receipt_email: 'buyer@localhost',
      }),
      'receipt_email',
    );
    expect((await svc.deps.stripe.paymentIntents.list({ limit: 100 })).data).toHaveLength(before);
  });

  it('POST /create-checkout-session with customer_email buyer@localhost → 400 on /body/customer_email', async () => {
    const before = (await svc.deps.stripe.checkout.sessions.list({ limit: 100 })).data.length;
    expectRefused(
      await postJson(`${svc.url}/create-checkout-session`, session('buyer@localhost')),
      'customer_email',
    );
    expect((await svc.deps.stripe.checkout.sessions.list({ limit: 100 })).data).toHaveLength(before);
  });

  it('an address with a dotted domain is taken on both', async () => {
    const intent = await postJson(`${svc.url}/payment-intent`, {
      amount: 1000,
      currency: 'usd',
      receipt_email: 'buyer@shop.example',
    });
    expect(intent.status).toBe(200);
    const created = await postJson(`${svc.url}/create-checkout-session`, session('buyer@shop.example'));
    expect(created.status).toBe(200);
  });
});
