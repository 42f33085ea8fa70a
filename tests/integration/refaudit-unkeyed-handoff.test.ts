/**
 * POST /refund whose Stripe call got no answer hands the refund to the worker, which makes it. Sent without
 * request_id or Idempotency-Key, its 503 upstream_unavailable still carried Retry-After (and retry_after), which
 * retrying HTTP clients follow by themselves: the same body sent again gets a new request_id, a refund of its own,
 * and a partial refund was made twice (the one handed over, and the retry's). Without either, that answer has no
 * Retry-After and names the request_id to check, as README and the contract promise for an answer whose POST may
 * still complete; with a request_id it keeps Retry-After, since its retry finds the same refund.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService('sqlite', { RATE_LIMIT_PER_MINUTE: '0', LOG_LEVEL: 'warn' });
});
afterAll(async () => {
  await svc?.stop();
});

/** POST /refund of `body` while Stripe fails every refund call; the worker then makes it once Stripe is back. */
async function refundDuringOutage(body: Record<string, unknown>) {
  await svc.faults({ error_rate: 1, match: { method: 'POST', path_prefix: '/v1/refunds' } });
  try {
    return await postJson(`${svc.url}/refund`, body);
  } finally {
    await svc.faults({});
  }
}

describe('POST /refund that Stripe did not answer, handed to the worker', () => {
  it('without request_id or Idempotency-Key: no Retry-After, and the request_id to check', async () => {
    const pi = await paidIntent(svc.url, 5000);
    const res = await refundDuringOutage({ payment_intent_id: pi, amount: 1000 });
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.json.code).toBe('upstream_unavailable');
    expect(res.headers.get('retry-after')).toBeNull();
    expect(res.json).not.toHaveProperty('retry_after');
    const named = /\/refund-status\/([0-9a-f-]{36})\b/.exec(res.json.detail as string)?.[1];
    expect(named).toBeDefined();
    // The refund it names is made once, in the background.
    const done = await eventually(
      () => getJson(`${svc.url}/refund-status/${named!}`),
      (r) => r.json.status === 'succeeded',
    );
    expect(done.json).toMatchObject({ status: 'succeeded', amount: 1000 });
    expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data.map((r) => r.amount)).toEqual([
      1000,
    ]);
  });

  it('with a request_id: Retry-After, since its retry finds the same refund', async () => {
    const pi = await paidIntent(svc.url, 5000);
    const body = { payment_intent_id: pi, amount: 1000, request_id: 'handoff-keyed' };
    const res = await refundDuringOutage(body);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    const retried = await eventually(
      () => postJson(`${svc.url}/refund`, body),
      (r) => r.status === 200,
    );
    expect(retried.json.refund).toMatchObject({ amount: 1000, status: 'succeeded' });
    expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data).toHaveLength(1);
  });
});
