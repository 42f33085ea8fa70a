/**
 * An Idempotency-Key makes a POST "safe to retry". POST /refund answering 503 after it reserved the
 * amount and handed the refund to the worker must not let a retry with the same key refund again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite', { STRIPE_MAX_NETWORK_RETRIES: '0' });
});
afterAll(async () => {
  await svc?.stop();
});

describe('Idempotency-Key on POST /refund after a 503 hand-off', () => {
  it('a retry with the same key and body does not make a second refund', async () => {
    const created = await postJson(`${svc.url}/payment-intent`, {
      amount: 4000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    const pi = created.json.paymentIntentId as string;
    const key = { 'Idempotency-Key': 'idem-503' };
    await svc.faults({ error_rate: 1, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    const first = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 1000 }, key);
    expect(first.status).toBe(503);
    await svc.faults({});
    // The client does what the contract says is safe: the same request, the same key.
    const retry = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 1000 }, key);
    expect(retry.status).toBeGreaterThanOrEqual(200);
    // Whatever the retry answered, Stripe ends up with exactly one refund of 1000.
    await eventually(
      async () => (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data,
      (list) => list.length >= 1 && list.every((r) => r.status === 'succeeded'),
    );
    await new Promise((r) => setTimeout(r, 1500));
    const refunds = (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data;
    expect(refunds.map((r) => r.amount)).toEqual([1000]);
    const detail = String(first.json.detail);
    const id = /refund-status\/([^ .]+)/.exec(detail)?.[1];
    const status = await getJson(`${svc.url}/refund-status/${id}`);
    expect(status.json.status).toBe('succeeded');
  });
});
