/**
 * With `format: int64` on amounts and Unix times (tests/unit/contract-int64.test.ts), the validator checks them as
 * 64-bit integers: amounts over 2^31-1 (idr takes twelve digits) are still taken and answered, and Amount's own
 * bounds still hold. In tests the service validates its answers too (VALIDATE_RESPONSES), so the answers' amounts and
 * times are checked against the same int64 schemas.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite');
});
afterAll(async () => {
  await svc?.stop();
});

const INT32_MAX = 2 ** 31 - 1;
const IDR_MAX = 999_999_999_999;

describe('amounts above 32 bits', () => {
  it.each([INT32_MAX + 1, IDR_MAX])(
    'idr %d is paid, read back and refunded, beyond 2^31-1',
    async (amount) => {
      const paid = await postJson(`${svc.url}/payment-intent`, {
        amount,
        currency: 'idr',
        payment_method: 'pm_card_visa',
        confirm: true,
      });
      expect(paid.status, paid.text).toBe(200);
      const pi = paid.json.paymentIntentId as string;

      const read = await getJson(`${svc.url}/payment-intent/${pi}`);
      expect(read.status, read.text).toBe(200);
      expect(read.json).toMatchObject({ amount, amount_received: amount });
      expect(read.json.created).toEqual(expect.any(Number));

      const refund = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, request_id: `all-${pi}` });
      expect(refund.status, refund.text).toBe(200);
      expect(refund.json.refund).toMatchObject({ amount, status: 'succeeded' });
      const status = await getJson(`${svc.url}/refund-status/all-${pi}`);
      expect(status.status, status.text).toBe(200);
      expect(status.json.amount).toBe(amount);
    },
  );

  it('a checkout line of 2^31 idr is taken and its total answered', async () => {
    const res = await postJson(`${svc.url}/create-checkout-session`, {
      line_items: [
        {
          price_data: { currency: 'idr', product_data: { name: 'Villa' }, unit_amount: INT32_MAX + 1 },
          quantity: 1,
        },
      ],
      success_url: 'https://shop.example/ok?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: 'https://shop.example/no',
    });
    expect(res.status, res.text).toBe(200);
    expect(res.json.amount_total).toBe(INT32_MAX + 1);
    expect(res.json.expires_at).toEqual(expect.any(Number));
  });

  it.each([0, IDR_MAX + 1, 1.5])('amount %d is still refused with 400 on the field', async (amount) => {
    const res = await postJson(`${svc.url}/payment-intent`, { amount, currency: 'idr' });
    expect(res.status, res.text).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.json.errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: '/body/amount' })]),
    );
  });
});
