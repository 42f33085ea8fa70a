/**
 * An Idempotency-Key makes a POST "safe to retry". A refund asked for with one but without a request_id
 * takes a request_id derived from the key, so a retry finds the same refund even when the key store no
 * longer answers it: after a 5xx (the key is forgotten so that the retry runs again), or a day later.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite', { STRIPE_MAX_NETWORK_RETRIES: '0' });
});
afterEach(() => {
  vi.useRealTimers();
});
afterAll(async () => {
  await svc?.stop();
});

const stripeRefunds = async (pi: string) => (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data;

describe('Idempotency-Key on a refund without request_id', () => {
  it('POST /refund: a retry after the 503 hand-off answers that refund, and Stripe makes one', async () => {
    const pi = await paidIntent(svc.url, 4000);
    const key = { 'Idempotency-Key': 'idem-503' };
    await svc.faults({ error_rate: 1, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    const first = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 1000 }, key);
    expect(first.status).toBe(503);
    const id = /refund-status\/([^ .]+)/.exec(String(first.json.detail))?.[1];
    expect(id).toMatch(/^idem:[0-9a-f]{40}$/);
    await svc.faults({});
    // The client does what the contract says is safe: the same request, the same key. It is told about the
    // refund it already asked for: still in progress (409), or made (200), never a second one.
    const retry = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 1000 }, key);
    if (retry.status === 409) expect(retry.json.code).toBe('refund_in_progress');
    else {
      expect(retry.status).toBe(200);
      expect(retry.json.request_id).toBe(id);
    }
    const done = await eventually(
      () => getJson(`${svc.url}/refund-status/${id}`),
      (r) => r.json.status === 'succeeded',
    );
    expect(done.json.amount).toBe(1000);
    const again = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 1000 }, key);
    expect(again.status).toBe(200);
    expect(again.json.request_id).toBe(id);
    expect((await stripeRefunds(pi)).map((r) => r.amount)).toEqual([1000]);
  });

  it('POST /refund-async: the same key a day later is the same refund; with another body, the same 422 as within its day', async () => {
    const pi = await paidIntent(svc.url, 3000);
    const key = { 'Idempotency-Key': 'idem-next-day' };
    const first = await postJson(`${svc.url}/refund-async`, { payment_intent_id: pi, amount: 700 }, key);
    expect(first.status).toBe(202);
    const id = first.json.request_id as string;
    await eventually(
      () => getJson(`${svc.url}/refund-status/${id}`),
      (r) => r.json.status === 'succeeded',
    );
    // 25 hours on, the key store has forgotten the key; the ledger has not.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 25 * 3_600_000);
    const later = await postJson(`${svc.url}/refund-async`, { payment_intent_id: pi, amount: 700 }, key);
    expect(later.status).toBe(202);
    expect(later.headers.get('idempotent-replayed')).toBeNull();
    expect(later.json.request_id).toBe(id);
    // Another body is refused the same way within the key's day (the key store) and a day on (the refund the key
    // names): a client that sent no request_id was told 409 request_id_conflict once the key store forgot it.
    const mismatch = await postJson(`${svc.url}/refund-async`, { payment_intent_id: pi, amount: 800 }, key);
    expect(mismatch.status).toBe(422);
    expect(mismatch.json.code).toBe('idempotency_key_reused');
    vi.setSystemTime(Date.now() + 25 * 3_600_000);
    const other = await postJson(`${svc.url}/refund-async`, { payment_intent_id: pi, amount: 800 }, key);
    expect(other.status).toBe(422);
    expect(other.json.code).toBe('idempotency_key_reused');
    expect(String(other.json.detail)).toContain('Idempotency-Key');
    vi.useRealTimers();
    // A request_id in the body still names the refund itself, key or not.
    const named = await postJson(
      `${svc.url}/refund-async`,
      { payment_intent_id: pi, amount: 100, request_id: 'named-with-key' },
      { 'Idempotency-Key': 'idem-named' },
    );
    expect(named.status).toBe(202);
    expect(named.json.request_id).toBe('named-with-key');
    await eventually(
      async () => (await stripeRefunds(pi)).map((r) => r.amount).sort(),
      (amounts) => amounts.length === 2,
    );
    expect((await stripeRefunds(pi)).map((r) => r.amount).sort()).toEqual([100, 700]);
  });
});
