/**
 * A metadata value of `""` on create is, at Stripe, a key not set (an empty value unsets a key; on create there is
 * nothing to unset): the service passes `{"k": ""}` on and Stripe's object has no `k`. The Idempotency-Key compared
 * the body with `k` as another request than the body without it, so a retry that left the empty key out (another
 * client library, say, that drops empty strings) got 422 idempotency_key_reused for the payment its key had made.
 * The body is now compared as the service takes it, without keys of empty value, and the ledger keeps the session's
 * metadata as Stripe does, without them.
 */
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

const checkout = (metadata: Record<string, string>) => ({
  line_items: [
    { price_data: { currency: 'usd', product_data: { name: 'Lamp' }, unit_amount: 2500 }, quantity: 1 },
  ],
  success_url: 'https://shop.example.com/ok?session_id={CHECKOUT_SESSION_ID}',
  cancel_url: 'https://shop.example.com/no',
  metadata,
});

describe('an Idempotency-Key compares a metadata value of "" as Stripe takes it: not set', () => {
  it('POST /payment-intent: {"order", "k": ""} then {"order"} under one key is one payment, replayed', async () => {
    const key = { 'Idempotency-Key': 'empty-value-intent' };
    const body = { amount: 1500, currency: 'usd' };
    const first = await postJson(
      `${svc.url}/payment-intent`,
      { ...body, metadata: { order: 'empty-value-intent', k: '' } },
      key,
    );
    expect(first.status, first.text).toBe(200);
    // What Stripe keeps of it: no `k`.
    const made = await svc.deps.stripe.paymentIntents.retrieve(String(first.json.paymentIntentId));
    expect(made.metadata).toEqual({ order: 'empty-value-intent' });

    const without = await postJson(
      `${svc.url}/payment-intent`,
      { ...body, metadata: { order: 'empty-value-intent' } },
      key,
    );
    expect(without.status, without.text).toBe(200);
    expect(without.headers.get('idempotent-replayed')).toBe('true');
    expect(without.json.paymentIntentId).toBe(first.json.paymentIntentId);
    expect(await intentsFor('empty-value-intent')).toEqual([first.json.paymentIntentId]);

    // Only empty values: as no metadata at all.
    const onlyEmptyKey = { 'Idempotency-Key': 'empty-value-intent-only' };
    const only = await postJson(`${svc.url}/payment-intent`, { ...body, metadata: { k: '' } }, onlyEmptyKey);
    expect(only.status, only.text).toBe(200);
    const bare = await postJson(`${svc.url}/payment-intent`, body, onlyEmptyKey);
    expect(bare.status, bare.text).toBe(200);
    expect(bare.headers.get('idempotent-replayed')).toBe('true');
    expect(bare.json.paymentIntentId).toBe(only.json.paymentIntentId);
  });

  it('POST /create-checkout-session: {"order", "k": ""} then {"order"} is one session; kept as Stripe keeps it', async () => {
    const key = { 'Idempotency-Key': 'empty-value-session' };
    const first = await postJson(
      `${svc.url}/create-checkout-session`,
      checkout({ order: 'empty-value-session', k: '' }),
      key,
    );
    expect(first.status, first.text).toBe(200);
    const session = await svc.deps.stripe.checkout.sessions.retrieve(String(first.json.id));
    expect(session.metadata).toEqual({ order: 'empty-value-session' });
    expect((await svc.deps.store.payments.get(String(first.json.id)))?.metadata).toEqual({
      order: 'empty-value-session',
    });

    const without = await postJson(
      `${svc.url}/create-checkout-session`,
      checkout({ order: 'empty-value-session' }),
      key,
    );
    expect(without.status, without.text).toBe(200);
    expect(without.headers.get('idempotent-replayed')).toBe('true');
    expect(without.json.id).toBe(first.json.id);
  });

  it('a value that is not empty is still another request, and the reserved key is refused even when empty', async () => {
    const key = { 'Idempotency-Key': 'empty-value-other' };
    const body = { amount: 1700, currency: 'usd', metadata: { order: 'empty-value-other', k: '' } };
    expect((await postJson(`${svc.url}/payment-intent`, body, key)).status).toBe(200);
    const reused = await postJson(
      `${svc.url}/payment-intent`,
      { ...body, metadata: { order: 'empty-value-other', k: ' ' } },
      key,
    );
    expect(reused.status, reused.text).toBe(422);
    expect(reused.json.code).toBe('idempotency_key_reused');

    const reserved = await postJson(`${svc.url}/payment-intent`, {
      amount: 1700,
      currency: 'usd',
      metadata: { payment_service_owner: '' },
    });
    expect(reserved.status, reserved.text).toBe(400);
    expect(reserved.json.code).toBe('metadata_key_reserved');
  });
});
