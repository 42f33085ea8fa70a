/**
 * Idempotency-Key keeps a handler's 4xx as the definite answer to replay for 24 hours. "A refund with this
 * request_id is still being processed" (409 refund_in_progress) is not definite: it only says another
 * request is running, and asking again later returns the refund. Stored under the key, it was replayed
 * (Idempotent-Replayed: true) to every retry for a day, long after the refund was made, while the same
 * retry without the key got the refund. Stripe does not save results of requests that conflicted with
 * one still executing; neither should the service.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let auth: Record<string, string>;

beforeAll(async () => {
  svc = await startTestService('sqlite', { API_AUTH: 'on', RATE_LIMIT_PER_MINUTE: '0', LOG_LEVEL: 'warn' });
  const { key } = await createKey(svc.deps.store.apiKeys, { owner: 'idem', kind: 'secret' });
  auth = { authorization: `Bearer ${key}` };
});
afterAll(async () => {
  await svc?.stop();
});

describe('Idempotency-Key and a refund still in progress', () => {
  it('a retry with the same key after the refund finished gets the refund, not the stored 409', async () => {
    const pi = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true },
      auth,
    );
    expect(pi.status).toBe(200);
    const body = { payment_intent_id: pi.json.paymentIntentId, amount: 300, request_id: 'idem-in-flight' };

    await svc.faults({ latency_ms: 800 });
    let first: Promise<Awaited<ReturnType<typeof postJson>>>;
    try {
      first = postJson(`${svc.url}/refund`, body, auth);
      await new Promise((r) => setTimeout(r, 300));
      const during = await postJson(`${svc.url}/refund`, body, { ...auth, 'idempotency-key': 'k-in-flight' });
      expect(during.status).toBe(409);
      expect(during.json.code).toBe('refund_in_progress');
      expect(during.headers.get('retry-after')).toBe('1');
      expect((await first).status).toBe(200);
    } finally {
      await svc.faults({});
    }

    const retry = await postJson(`${svc.url}/refund`, body, { ...auth, 'idempotency-key': 'k-in-flight' });
    expect(retry.status).toBe(200);
    expect(retry.json.request_id).toBe('idem-in-flight');
    // And from now on the key replays that answer.
    const again = await postJson(`${svc.url}/refund`, body, { ...auth, 'idempotency-key': 'k-in-flight' });
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  });
});
