/**
 * POST /refund sent with neither request_id nor Idempotency-Key, answered by REQUEST_TIMEOUT_MS while Stripe is
 * still making the refund: the handler goes on, and the refund is made under the request_id the service
 * generated. The 503 `timeout` rightly had no Retry-After (sent again as it was, the request would be a second
 * refund), but it named no request_id either, so the client had nothing to check /refund-status with, nor to send
 * the request again with safely; every other answer to such a request names it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService('sqlite', {
    API_AUTH: 'off',
    RATE_LIMIT_PER_MINUTE: '0',
    REQUEST_TIMEOUT_MS: '1000',
    STRIPE_MAX_NETWORK_RETRIES: '0',
    LOG_LEVEL: 'silent',
  });
});
afterAll(async () => {
  await svc?.faults({});
  await svc?.stop();
});

describe('an unkeyed POST /refund answered by the request timeout', () => {
  it('names the request_id its refund is made under, which checks it and refunds at most once', async () => {
    const pi = await paidIntent(svc.url, 5000);
    await svc.faults({ latency_ms: 2_000, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    const res = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 1500 });
    expect(res.status).toBe(503);
    expect(res.json.code).toBe('timeout');
    expect(res.headers.get('retry-after')).toBeNull();
    const named = /request_id ([0-9a-f-]{36})/.exec(String(res.json.detail));
    expect(named, String(res.json.detail)).not.toBeNull();
    const id = named![1]!;

    const done = await eventually(
      () => getJson(`${svc.url}/refund-status/${id}`),
      (r) => r.status === 200 && r.json.status === 'succeeded',
    );
    expect(done.json).toMatchObject({ amount: 1500, payment_intent_id: pi });
    await svc.faults({});
    const again = await postJson(`${svc.url}/refund`, {
      payment_intent_id: pi,
      amount: 1500,
      request_id: id,
    });
    expect(again.status).toBe(200);
    expect((again.json.refund as { id: string }).id).toBe(done.json.refund_id);
    const atStripe = await svc.deps.stripe.refunds.list({ payment_intent: pi });
    expect(atStripe.data.map((r) => r.amount)).toEqual([1500]);
  });
});
