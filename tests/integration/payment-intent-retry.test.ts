/**
 * POST /payment-intent with confirm: true charges the card. When Stripe's answer is lost the
 * service answers 503 and forgets the Idempotency-Key; the client's retry with the same key must not
 * create (and charge) a second payment intent. The same holds for checkout sessions (a second session
 * would be a second page the customer could pay on).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite', { STRIPE_MAX_NETWORK_RETRIES: '0' });
});
afterAll(async () => {
  await svc?.stop();
});

describe('POST /payment-intent retried with the same Idempotency-Key after a lost answer', () => {
  it('charges the customer once', async () => {
    const body = {
      amount: 4321,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
      metadata: { order: 'double-charge' },
    };
    const key = { 'Idempotency-Key': 'pi-retry' };
    // Stripe creates and confirms the intent, then the connection drops before the answer arrives.
    await svc.faults({ drop_rate: 1, match: { method: 'POST', path_prefix: '/v1/payment_intents' } });
    const first = await postJson(`${svc.url}/payment-intent`, body, key);
    expect(first.status).toBe(503);
    await svc.faults({});
    const retry = await postJson(`${svc.url}/payment-intent`, body, key);
    expect(retry.status).toBe(200);
    const all = await svc.deps.stripe.paymentIntents.list({ limit: 100 });
    const charged = all.data.filter(
      (pi) => pi.metadata?.order === 'double-charge' && pi.status === 'succeeded',
    );
    expect(charged.map((pi) => pi.id)).toEqual([retry.json.paymentIntentId]);
  });
});

describe('POST /payment-intent without an Idempotency-Key whose answer is lost', () => {
  it('is not answered "retry later": the card was charged, and a retry would charge it again', async () => {
    const body = {
      amount: 2468,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
      metadata: { order: 'no-key-lost-answer' },
    };
    await svc.faults({ drop_rate: 1, match: { method: 'POST', path_prefix: '/v1/payment_intents' } });
    const first = await postJson(`${svc.url}/payment-intent`, body);
    await svc.faults({});
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).toBeNull();
    expect(first.json.retry_after).toBeUndefined();
    expect(first.json.code).toBe('upstream_unavailable');
    const detail = String(first.json.detail);
    expect(detail).toMatch(/may have made the payment intent/);
    expect(detail).toMatch(/no Idempotency-Key, so a retry may make a second one/);
    expect(detail).not.toMatch(/Retry later/);
    // What the answer warns of: Stripe made and charged the intent.
    const all = await svc.deps.stripe.paymentIntents.list({ limit: 100 });
    const charged = all.data.filter(
      (pi) => pi.metadata?.order === 'no-key-lost-answer' && pi.status === 'succeeded',
    );
    expect(charged).toHaveLength(1);
  });

  it('with a key, the same loss is answered "retry later" (the retry gets the intent made)', async () => {
    const body = { amount: 1357, currency: 'usd', metadata: { order: 'keyed-lost-answer' } };
    await svc.faults({ drop_rate: 1, match: { method: 'POST', path_prefix: '/v1/payment_intents' } });
    const first = await postJson(`${svc.url}/payment-intent`, body, { 'Idempotency-Key': 'keyed-lost' });
    await svc.faults({});
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).not.toBeNull();
    expect(String(first.json.detail)).toMatch(/Retry later/);
  });
});

describe('POST /create-checkout-session retried with the same Idempotency-Key after a lost answer', () => {
  it('makes one session, and another key makes another', async () => {
    const body = {
      line_items: [
        {
          price_data: { currency: 'usd', product_data: { name: 'Retry mug' }, unit_amount: 1500 },
          quantity: 1,
        },
      ],
      success_url: 'https://shop.example/ok',
      cancel_url: 'https://shop.example/cancel',
      metadata: { order: 'checkout-retry' },
    };
    const key = { 'Idempotency-Key': 'checkout-retry' };
    await svc.faults({ drop_rate: 1, match: { method: 'POST', path_prefix: '/v1/checkout/sessions' } });
    const first = await postJson(`${svc.url}/create-checkout-session`, body, key);
    expect(first.status).toBe(503);
    await svc.faults({});
    const retry = await postJson(`${svc.url}/create-checkout-session`, body, key);
    expect(retry.status).toBe(200);
    const sessions = async () =>
      (await svc.deps.stripe.checkout.sessions.list({ limit: 100 })).data
        .filter((s) => s.metadata?.order === 'checkout-retry')
        .map((s) => s.id);
    expect(await sessions()).toEqual([retry.json.id]);
    // A new key is a new order: a new session.
    const other = await postJson(`${svc.url}/create-checkout-session`, body, {
      'Idempotency-Key': 'checkout-retry-2',
    });
    expect(other.status).toBe(200);
    expect(other.json.id).not.toBe(retry.json.id);
    expect((await sessions()).sort()).toEqual([retry.json.id, other.json.id].sort());
  });
});

describe('POST /payment-intent whose Stripe idempotency key holds a saved 500', () => {
  it('says that retrying with the key cannot succeed (502, no Retry-After); a new key makes the intent', async () => {
    const body = {
      amount: 2600,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
      metadata: { order: 'saved-500' },
    };
    const key = { 'Idempotency-Key': 'pi-saved-500' };
    // Stripe's endpoint fails once it has begun, and saves that 500 under the key for every retry with it.
    await svc.faults({
      execution_error_rate: 1,
      match: { method: 'POST', path_prefix: '/v1/payment_intents' },
    });
    // Stripe's first answer already says the 500 is saved (Stripe-Should-Retry: false): so does the service's.
    const first = await postJson(`${svc.url}/payment-intent`, body, key);
    expect(first.status).toBe(502);
    expect(first.json).toMatchObject({ code: 'upstream_error_saved' });
    await svc.faults({});
    // Stripe is fine again, but not for this key: every retry with it gets the saved 500 back, and is told so.
    for (let i = 0; i < 2; i++) {
      const retry = await postJson(`${svc.url}/payment-intent`, body, key);
      expect(retry.status).toBe(502);
      expect(retry.json).toMatchObject({ code: 'upstream_error_saved' });
      expect(retry.headers.get('retry-after')).toBeNull();
    }
    // The same key with another body is what the key's own record would have refused, had a 5xx not freed it.
    const other = await postJson(`${svc.url}/payment-intent`, { ...body, amount: 2700 }, key);
    expect(other.status).toBe(422);
    expect(other.json).toMatchObject({ code: 'idempotency_key_reused' });
    const fresh = await postJson(`${svc.url}/payment-intent`, body, { 'Idempotency-Key': 'pi-saved-500-b' });
    expect(fresh.status).toBe(200);
    const all = await svc.deps.stripe.paymentIntents.list({ limit: 100 });
    const charged = all.data.filter((pi) => pi.metadata?.order === 'saved-500');
    expect(charged.map((pi) => pi.id)).toEqual([fresh.json.paymentIntentId]);
  });
});
