/**
 * GET /refund-status answered a refund's amount without its currency: `amount: 300` of a yen payment read like
 * 3.00 of anything. POST /refund's answer and the outcome message on `stripe_refund_responses` name the currency;
 * the status does too, in every state, from the payment's currency until Stripe's answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateResponse } from '../helpers/contract.js';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService('sqlite', { RATE_LIMIT_PER_MINUTE: '0', LOG_LEVEL: 'warn' });
});
afterAll(async () => {
  await svc?.stop();
});

describe('GET /refund-status names the currency', () => {
  it('of a queued refund, from its acceptance to its end', async () => {
    const pi = await paidIntent(svc.url, 1000, { currency: 'jpy' });
    // Stripe holds refunds back for a while, so the refund is seen before Stripe has answered.
    await svc.faults({ latency_ms: 600, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    try {
      const queued = await postJson(`${svc.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 300,
        request_id: 'currency-queued',
      });
      expect(queued.status).toBe(202);
      const early = await getJson(`${svc.url}/refund-status/currency-queued`);
      expect(['queued', 'processing']).toContain(early.json.status);
      expect(early.json).toMatchObject({ amount: 300, currency: 'jpy' });
      expect(validateResponse('getRefundStatus', 200, early.json)).toEqual([]);
    } finally {
      await svc.faults({});
    }
    const done = await eventually(
      () => getJson(`${svc.url}/refund-status/currency-queued`),
      (r) => r.json.status === 'succeeded',
    );
    expect(done.json).toMatchObject({ status: 'succeeded', amount: 300, currency: 'jpy' });
    expect(validateResponse('getRefundStatus', 200, done.json)).toEqual([]);
  });

  it('of a refund made now, as POST /refund answered it', async () => {
    const pi = await paidIntent(svc.url, 5120, { currency: 'kwd' });
    const made = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, request_id: 'currency-now' });
    expect(made.status).toBe(200);
    expect(made.json.refund).toMatchObject({ amount: 5120, currency: 'kwd' });
    const status = await getJson(`${svc.url}/refund-status/currency-now`);
    expect(status.json).toMatchObject({ status: 'succeeded', amount: 5120, currency: 'kwd' });
  });
});
