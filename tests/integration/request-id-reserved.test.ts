/**
 * `stripe:<refund id>` is the request id the ledger gives a refund made in the Stripe dashboard. A client could
 * choose such an id for a refund of its own: taken before the dashboard refund's webhook was applied, that
 * refund could never be recorded (every retry of its event failed on the taken id), never counted against what
 * is left to refund, and GET /refund-status/stripe:<refund id> answered with the client's refund instead. The
 * prefix is refused on both refund paths now, before anything is reserved.
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

describe('request ids of dashboard refunds', () => {
  it.each(['/refund', '/refund-async'])('%s refuses a request_id starting with stripe:', async (path) => {
    const paid = await postJson(`${svc.url}/payment-intent`, {
      amount: 2500,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    expect(paid.status, paid.text).toBe(200);
    const pi = paid.json.paymentIntentId as string;

    const res = await postJson(`${svc.url}${path}`, {
      payment_intent_id: pi,
      amount: 1000,
      request_id: 'stripe:re_3PqRsT2eZvKYlo2C0a1b2c3d',
    });
    expect(res.status, res.text).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({ code: 'request_id_reserved', param: 'request_id' });

    // Nothing was reserved: the whole amount is still there to refund.
    const whole = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, request_id: `whole-${pi}` });
    expect(whole.status, whole.text).toBe(200);
    expect(whole.json.refund).toMatchObject({ amount: 2500, status: 'succeeded' });
  });
});
