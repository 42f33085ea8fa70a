/**
 * Stripe saves a 500 that happened once an endpoint began executing and replays it to every retry with the
 * same Idempotency-Key (https://docs.stripe.com/api/idempotent_requests: "Retries with the same key return
 * the saved response, including `500` errors."). The sandbox's `execution_error_rate` fault does the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

describe('a Stripe 500 saved under the refund idempotency key', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('sqlite');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  // A replayed 500 (Idempotent-Replayed: true) means nothing more will happen under that key: the worker looks
  // for the refund at Stripe and, as it is not there, asks again under the key's next generation.
  it('the refund still completes once Stripe is healthy again', async () => {
    const paid = await postJson(`${svc.url}/payment-intent`, {
      amount: 4000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    expect(paid.status).toBe(200);
    const pi = paid.json.paymentIntentId as string;
    await svc.faults({ execution_error_rate: 1, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    const res = await postJson(`${svc.url}/refund`, {
      payment_intent_id: pi,
      amount: 2500,
      request_id: 'cached-500',
    });
    expect(res.status).toBe(503);
    await svc.faults({});
    const settled = await eventually(
      () => getJson(`${svc.url}/refund-status/cached-500`),
      (r) => r.json.status === 'succeeded' || r.json.status === 'failed',
    );
    expect(settled.json).toMatchObject({ status: 'succeeded', amount: 2500 });
    const refunds = (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data;
    expect(refunds).toHaveLength(1);
  });
});
