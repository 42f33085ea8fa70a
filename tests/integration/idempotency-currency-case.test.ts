/**
 * The service takes a currency code in any case (`USD` is `usd`, as Stripe and the original service take it). The
 * Idempotency-Key compared the bodies as sent, so a retry of one payment that wrote its currency in another case
 * (`"usd"` first, `"USD"` after, say from another client library) got 422 idempotency_key_reused for the payment its
 * key had made: the body is now compared as the service takes it. A key an earlier version kept (compared as sent)
 * still replays its own body.
 */
import { hash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite', { LOG_LEVEL: 'silent' });
});
afterAll(async () => {
  await svc?.stop();
});

async function intentsFor(order: string): Promise<string[]> {
  const all = await svc.deps.stripe.paymentIntents.list({ limit: 100 });
  return all.data.filter((pi) => pi.metadata?.order === order).map((pi) => pi.id);
}

const checkout = (order: string, ...currencies: string[]) => ({
  line_items: currencies.map((currency, i) => ({
    price_data: { currency, product_data: { name: `Lamp ${i}` }, unit_amount: 2500 },
    quantity: 1,
  })),
  success_url: 'https://shop.example.com/ok?session_id={CHECKOUT_SESSION_ID}',
  cancel_url: 'https://shop.example.com/no',
  metadata: { order },
});

describe('an Idempotency-Key compares the currency as the service takes it, in any case', () => {
  it('POST /payment-intent: "usd" then "USD" under one key is one payment, replayed', async () => {
    const key = { 'Idempotency-Key': 'currency-case-intent' };
    const body = { amount: 1500, currency: 'usd', metadata: { order: 'currency-case-intent' } };
    const first = await postJson(`${svc.url}/payment-intent`, body, key);
    expect(first.status, first.text).toBe(200);

    const upper = await postJson(`${svc.url}/payment-intent`, { ...body, currency: 'USD' }, key);
    expect(upper.status, upper.text).toBe(200);
    expect(upper.headers.get('idempotent-replayed')).toBe('true');
    expect(upper.json.paymentIntentId).toBe(first.json.paymentIntentId);
    expect(upper.json.clientSecret).toBe(first.json.clientSecret);
    expect(await intentsFor('currency-case-intent')).toEqual([first.json.paymentIntentId]);
  });

  it('POST /create-checkout-session: line items written "SGD" and "sgd" replay the session of "sgd" and "Sgd"', async () => {
    const key = { 'Idempotency-Key': 'currency-case-session' };
    const first = await postJson(`${svc.url}/create-checkout-session`, checkout('s', 'sgd', 'Sgd'), key);
    expect(first.status, first.text).toBe(200);

    const again = await postJson(`${svc.url}/create-checkout-session`, checkout('s', 'SGD', 'sgd'), key);
    expect(again.status, again.text).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.json.id).toBe(first.json.id);
  });

  it('another currency, or another amount, under the key is still another request', async () => {
    const key = { 'Idempotency-Key': 'currency-case-other' };
    const body = { amount: 1700, currency: 'EUR', metadata: { order: 'currency-case-other' } };
    expect((await postJson(`${svc.url}/payment-intent`, body, key)).status).toBe(200);
    for (const other of [
      { ...body, currency: 'usd' },
      { ...body, amount: 1800, currency: 'eur' },
    ]) {
      const reused = await postJson(`${svc.url}/payment-intent`, other, key);
      expect(reused.status, reused.text).toBe(422);
      expect(reused.json.code).toBe('idempotency_key_reused');
    }
    expect(await intentsFor('currency-case-other')).toHaveLength(1);
  });

  it('a key an earlier version kept for a body in "USD" still replays that body', async () => {
    const body = {
      amount: 1900,
      currency: 'USD',
      confirm: false,
      metadata: { order: 'currency-case-earlier' },
    };
    const made = await postJson(`${svc.url}/payment-intent`, body);
    expect(made.status, made.text).toBe(200);
    // What an earlier version kept: the hash of the operation and the body as sent (keys sorted), and the answer
    // without its client secret. Without API keys every caller is the anonymous owner ''.
    const sorted = (v: unknown): unknown =>
      v && typeof v === 'object' && !Array.isArray(v)
        ? Object.fromEntries(
            Object.entries(v as Record<string, unknown>)
              .sort(([a], [b]) => (a < b ? -1 : 1))
              .map(([k, x]) => [k, sorted(x)]),
          )
        : v;
    const earlierHash = hash('sha256', `createPaymentIntent\n${JSON.stringify(sorted(body))}`, 'hex');
    const kept = svc.deps.store.idempotency;
    expect(await kept.begin('', 'currency-case-earlier', earlierHash, 86_400_000)).toEqual({
      kind: 'started',
    });
    const answer = { success: true, paymentIntentId: made.json.paymentIntentId, status: made.json.status };
    expect(await kept.complete('', 'currency-case-earlier', 200, answer)).toBe(true);

    const retry = await postJson(`${svc.url}/payment-intent`, body, {
      'Idempotency-Key': 'currency-case-earlier',
    });
    expect(retry.status, retry.text).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.json.paymentIntentId).toBe(made.json.paymentIntentId);
    expect(await intentsFor('currency-case-earlier')).toEqual([made.json.paymentIntentId]);
  });
});
