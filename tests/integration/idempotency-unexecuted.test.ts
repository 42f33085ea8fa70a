/**
 * Which answers an Idempotency-Key keeps. Stripe saves a result only once the endpoint began executing: not
 * when the parameters failed validation, nor when the key had been used with other parameters
 * (docs.stripe.com/api/idempotent_requests). The service kept both for 24 hours:
 * - its own refusal of a body before anything was done (400 amount_not_rounded): the corrected request under the
 *   same key got 422 idempotency_key_reused, though nothing had been made under it;
 * - Stripe's 422 for a key whose record here had been freed (by a 5xx) and that came back with another body: the
 *   original body under the key then got that 422 too, so the client could never learn the payment intent
 *   Stripe had made under it, and a new key would charge again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { getJson, postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let auth: Record<string, string>;

beforeAll(async () => {
  svc = await startTestService('sqlite', {
    API_AUTH: 'on',
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'silent',
    STRIPE_MAX_NETWORK_RETRIES: '0',
  });
  const { key } = await createKey(svc.deps.store.apiKeys, { owner: 'unexecuted', kind: 'secret' });
  auth = { authorization: `Bearer ${key}` };
});
afterAll(async () => {
  await svc?.faults({});
  await svc?.stop();
});

describe('Idempotency-Key and answers given before anything was done', () => {
  it('a body the service refused before calling Stripe can be corrected and sent again under the same key', async () => {
    const headers = { ...auth, 'idempotency-key': 'unexecuted-rounding' };
    const refused = await postJson(`${svc.url}/payment-intent`, { amount: 5125, currency: 'kwd' }, headers);
    expect(refused.status).toBe(400);
    expect(refused.json.code).toBe('amount_not_rounded');

    const corrected = await postJson(`${svc.url}/payment-intent`, { amount: 5120, currency: 'kwd' }, headers);
    expect(corrected.status).toBe(200);
    expect(corrected.json.paymentIntentId).toMatch(/^pi_/);
    // And the key now holds that payment: the refused body under it is another request.
    const again = await postJson(`${svc.url}/payment-intent`, { amount: 5125, currency: 'kwd' }, headers);
    expect(again.status).toBe(422);
    expect(again.json.code).toBe('idempotency_key_reused');
  });

  it("Stripe's 422 for another body under a freed key leaves the key to the payment Stripe made under it", async () => {
    const headers = { ...auth, 'idempotency-key': 'unexecuted-stripe-422' };
    const original = { amount: 4200, currency: 'usd', metadata: { order: 'unexecuted-1' } };
    // Stripe makes the intent, and the answer is lost: a 5xx, which frees the key's record here.
    await svc.faults({ drop_rate: 1, match: { method: 'POST', path_prefix: '/v1/payment_intents' } });
    const lost = await postJson(`${svc.url}/payment-intent`, original, headers);
    expect(lost.status).toBeGreaterThanOrEqual(500);
    await svc.faults({});

    const other = await postJson(`${svc.url}/payment-intent`, { ...original, amount: 4300 }, headers);
    expect(other.status).toBe(422);
    expect(other.json.code).toBe('idempotency_key_reused');

    const retry = await postJson(`${svc.url}/payment-intent`, original, headers);
    expect(retry.status).toBe(200);
    const id = retry.json.paymentIntentId as string;
    const read = await getJson(`${svc.url}/payment-intent/${id}`, auth);
    expect(read.status).toBe(200);
    expect(read.json.amount).toBe(4200);
    expect(read.json.metadata).toMatchObject({ order: 'unexecuted-1' });
  });
});
