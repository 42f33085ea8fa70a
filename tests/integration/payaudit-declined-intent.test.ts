/**
 * A payment intent confirmed at once whose card is declined still exists at Stripe (awaiting another payment
 * method), and the service records it for the caller, "so the caller can retry or inspect it". The 402 did not say
 * which intent it was, so the caller could do neither, and learnt of it only from Stripe's events for an intent it had
 * never been told of. The 402 names it (`payment_intent_id`), on the first answer and on a replay; the intent is
 * the caller's alone to read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { validateResponse } from '../helpers/contract.js';
import { getJson, postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

const auth = (key: string) => ({ authorization: `Bearer ${key}` });
const DECLINED = {
  amount: 2000,
  currency: 'usd',
  payment_method: 'pm_card_chargeDeclinedInsufficientFunds',
  confirm: true,
};

describe('a declined confirmation names the payment intent it made (API keys on)', () => {
  let svc: TestService;
  const keys: Record<string, string> = {};
  beforeAll(async () => {
    svc = await startTestService('sqlite', { API_AUTH: 'on' });
    keys.shop = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' })).key;
    keys.rival = (await createKey(svc.deps.store.apiKeys, { owner: 'rival', kind: 'secret' })).key;
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('answers 402 with the intent, which its owner can read and nobody else', async () => {
    const declined = await postJson(`${svc.url}/payment-intent`, DECLINED, auth(keys.shop!));
    expect(declined.status).toBe(402);
    expect(declined.json).toMatchObject({ code: 'card_declined', decline_code: 'insufficient_funds' });
    expect(validateResponse('createPaymentIntent', 402, declined.json, 'application/problem+json')).toEqual(
      [],
    );
    const id = declined.json.payment_intent_id as string;
    expect(id).toMatch(/^pi_/);
    const atStripe = await svc.deps.stripe.paymentIntents.retrieve(id);
    expect(atStripe).toMatchObject({ amount: 2000, status: 'requires_payment_method' });

    const read = await getJson(`${svc.url}/payment-intent/${id}`, auth(keys.shop!));
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({
      id,
      amount: 2000,
      status: 'requires_payment_method',
      amount_received: 0,
    });
    expect((await getJson(`${svc.url}/payment-intent/${id}`, auth(keys.rival!))).status).toBe(404);
  });

  it('names it again on a replay under the same Idempotency-Key, with no second intent', async () => {
    const key = { ...auth(keys.shop!), 'Idempotency-Key': 'declined-once' };
    const body = { ...DECLINED, amount: 2100 };
    const first = await postJson(`${svc.url}/payment-intent`, body, key);
    expect(first.status).toBe(402);
    const replay = await postJson(`${svc.url}/payment-intent`, body, key);
    expect(replay.status).toBe(402);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.json.payment_intent_id).toBe(first.json.payment_intent_id);
    const made = await svc.deps.stripe.paymentIntents.list({ limit: 100 });
    expect(made.data.filter((pi) => pi.amount === 2100).map((pi) => pi.id)).toEqual([
      first.json.payment_intent_id,
    ]);
  });
});
