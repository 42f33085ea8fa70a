/**
 * The service takes a currency code in any case (`USD` is `usd`, as Stripe and the original service take it). The
 * Idempotency-Key compared the bodies as sent, so a retry of one payment that wrote its currency in another case
 * (`"usd"` first, `"USD"` after, say from another client library) got 422 idempotency_key_reused for the payment its
 * key had made: the body is now compared as the service takes it. A key an earlier version kept (compared as sent)
 * still replays its own body.
 */
import { hash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paidIntent, postJson } from '../helpers/http.js';
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

  it('an empty description or metadata, which the service sends Stripe as none, is the body without it', async () => {
    const key = { 'Idempotency-Key': 'empty-fields-intent' };
    const body = { amount: 1600, currency: 'usd' };
    const first = await postJson(
      `${svc.url}/payment-intent`,
      { ...body, description: '', metadata: {} },
      key,
    );
    expect(first.status, first.text).toBe(200);
    const bare = await postJson(`${svc.url}/payment-intent`, body, key);
    expect(bare.status, bare.text).toBe(200);
    expect(bare.headers.get('idempotent-replayed')).toBe('true');
    expect(bare.json.paymentIntentId).toBe(first.json.paymentIntentId);

    const sessionKey = { 'Idempotency-Key': 'empty-fields-session' };
    const { metadata: _none, ...session } = checkout('unused', 'sgd');
    const made = await postJson(`${svc.url}/create-checkout-session`, session, sessionKey);
    expect(made.status, made.text).toBe(200);
    const described = {
      ...session,
      line_items: session.line_items.map((li) => ({
        ...li,
        price_data: { ...li.price_data, product_data: { ...li.price_data.product_data, description: '' } },
      })),
      metadata: {},
    };
    const again = await postJson(`${svc.url}/create-checkout-session`, described, sessionKey);
    expect(again.status, again.text).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.json.id).toBe(made.json.id);
  });

  it.each(['/refund', '/refund-async'])(
    '%s: empty metadata, which the refund ledger takes as none too, is the body without it',
    async (path) => {
      const pi = await paidIntent(svc.url, 3000);
      const key = { 'Idempotency-Key': `empty-metadata${path.replace('/', '-')}` };
      const first = await postJson(
        `${svc.url}${path}`,
        { payment_intent_id: pi, amount: 700, metadata: {} },
        key,
      );
      expect(first.status, first.text).toBe(path === '/refund' ? 200 : 202);
      const bare = await postJson(`${svc.url}${path}`, { payment_intent_id: pi, amount: 700 }, key);
      expect(bare.status, bare.text).toBe(first.status);
      expect(bare.headers.get('idempotent-replayed')).toBe('true');
      expect(bare.json.request_id).toBe(first.json.request_id);
      const rows = await svc.deps.store.refunds.listForPaymentIntent(pi);
      expect(rows.map((r) => r.amount)).toEqual([700]);
    },
  );

  it('another currency, amount or description under the key is still another request', async () => {
    const key = { 'Idempotency-Key': 'currency-case-other' };
    const body = { amount: 1700, currency: 'EUR', metadata: { order: 'currency-case-other' } };
    expect((await postJson(`${svc.url}/payment-intent`, body, key)).status).toBe(200);
    for (const other of [
      { ...body, currency: 'usd' },
      { ...body, amount: 1800, currency: 'eur' },
      { ...body, description: ' ' },
      { ...body, metadata: { order: 'currency-case-other ' } },
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
