import Stripe from 'stripe';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  authHeaders,
  cardOnly,
  control,
  errorOf,
  request,
  startSandbox,
  stripeFor,
  waitFor,
  type Sandbox,
} from './helpers/fixtures.js';

describe('Idempotency-Key', () => {
  let sandbox: Sandbox;
  let stripe: Stripe;

  beforeAll(async () => {
    sandbox = await startSandbox();
    stripe = stripeFor(sandbox);
  });
  beforeEach(() => sandbox.reset());
  afterAll(() => sandbox.close());

  const params = {
    amount: 2000,
    currency: 'usd',
    payment_method: 'pm_card_visa',
    confirm: true,
    ...cardOnly,
  };

  it('replays the stored response for the same key and parameters', async () => {
    const first = await stripe.paymentIntents.create(params, { idempotencyKey: 'order-1' });
    const second = await stripe.paymentIntents.create(params, { idempotencyKey: 'order-1' });
    expect(second.id).toBe(first.id);
    expect(second).toEqual(first);
    expect(first.lastResponse.headers['idempotent-replayed']).toBeUndefined();
    expect(second.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect(second.lastResponse.headers['original-request']).toBe(first.lastResponse.requestId);
    expect(second.lastResponse.requestId).not.toBe(first.lastResponse.requestId);
    expect((await stripe.paymentIntents.list()).data).toHaveLength(1);
    expect((await stripe.charges.list()).data).toHaveLength(1);
  });

  it('treats parameter order as irrelevant but any changed value as a different request', async () => {
    const key = 'order-2';
    const a = await request(sandbox, 'POST', '/v1/payment_intents', {
      headers: { ...authHeaders(), 'Idempotency-Key': key },
      body: 'amount=900&currency=usd&metadata[a]=1&metadata[b]=2',
    });
    const b = await request(sandbox, 'POST', '/v1/payment_intents', {
      headers: { ...authHeaders(), 'Idempotency-Key': key },
      body: 'metadata[b]=2&currency=usd&metadata[a]=1&amount=900',
    });
    expect(b.headers.get('idempotent-replayed')).toBe('true');
    expect(b.json).toEqual(a.json);

    const err = await errorOf(() =>
      stripe.paymentIntents.create(
        { amount: 901, currency: 'usd', metadata: { a: '1', b: '2' } },
        { idempotencyKey: key },
      ),
    );
    expect(err).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(err.statusCode).toBe(400);
    expect(err.rawType).toBe('idempotency_error');
    expect(err.message).toContain('same parameters');
  });

  it('refuses a key reused on a different endpoint', async () => {
    await stripe.paymentIntents.create({ amount: 900, currency: 'usd' }, { idempotencyKey: 'shared' });
    const err = await errorOf(() =>
      stripe.checkout.sessions.create(
        {
          mode: 'payment',
          success_url: 'https://shop.example/ok',
          line_items: [
            { quantity: 1, price_data: { currency: 'usd', unit_amount: 900, product_data: { name: 'x' } } },
          ],
        },
        { idempotencyKey: 'shared' },
      ),
    );
    expect(err.rawType).toBe('idempotency_error');
    expect(err.statusCode).toBe(400);
  });

  it('scopes keys per API key', async () => {
    const other = stripeFor(sandbox, { apiKey: 'sk_test_anotherAccountKey0000' });
    const mine = await stripe.paymentIntents.create(
      { amount: 900, currency: 'usd' },
      { idempotencyKey: 'k' },
    );
    const theirs = await other.paymentIntents.create(
      { amount: 900, currency: 'usd' },
      { idempotencyKey: 'k' },
    );
    expect(theirs.id).not.toBe(mine.id);
  });

  it('stores business errors such as declines and replays them', async () => {
    const declined = { ...params, payment_method: 'pm_card_chargeDeclined' };
    const first = await errorOf(() =>
      stripe.paymentIntents.create(declined, { idempotencyKey: 'decline-1' }),
    );
    const second = await errorOf(() =>
      stripe.paymentIntents.create(declined, { idempotencyKey: 'decline-1' }),
    );
    expect(first.statusCode).toBe(402);
    expect(second.statusCode).toBe(402);
    expect(second.headers?.['idempotent-replayed']).toBe('true');
    expect((second.payment_intent as Stripe.PaymentIntent).id).toBe(
      (first.payment_intent as Stripe.PaymentIntent).id,
    );
    expect((await stripe.charges.list()).data).toHaveLength(1);
  });

  it('does not store parameter validation errors', async () => {
    const bad = await errorOf(() =>
      stripe.paymentIntents.create({ amount: 900 } as Stripe.PaymentIntentCreateParams, {
        idempotencyKey: 'fix-me',
      }),
    );
    expect(bad.code).toBe('parameter_missing');
    const good = await stripe.paymentIntents.create(
      { amount: 900, currency: 'usd' },
      { idempotencyKey: 'fix-me' },
    );
    expect(good.lastResponse.headers['idempotent-replayed']).toBeUndefined();
    expect(good.status).toBe('requires_payment_method');
  });

  // Stripe's 409 for a key in use is an invalid_request_error with the code idempotency_key_in_use, not an
  // idempotency_error (which its docs keep for a key reused with another endpoint or parameters:
  // https://docs.stripe.com/api/errors); a raw answer of Stripe's:
  // https://github.com/beam-community/stripity-stripe/issues/564. The service tells it by its code.
  it('answers 409 idempotency_key_in_use while the first request with the key is still running', async () => {
    const faults = await control(sandbox, 'POST', '/faults', {
      latency_ms: 1500,
      match: { method: 'POST', path_prefix: '/v1/refunds' },
    });
    expect(faults.status).toBe(200);
    const intent = await stripe.paymentIntents.create(params);
    const keysBefore = sandbox.stats().idempotencyKeys;
    const slow = stripe.refunds.create({ payment_intent: intent.id }, { idempotencyKey: 'refund-1' });
    // The first request has reserved its key once the store grows; it then sleeps in the injected latency.
    await waitFor(() => sandbox.stats().idempotencyKeys > keysBefore, 'the first refund to reserve its key');
    const conflict = await errorOf(() =>
      stripe.refunds.create({ payment_intent: intent.id }, { idempotencyKey: 'refund-1' }),
    );
    expect(conflict.statusCode).toBe(409);
    expect(conflict.rawType).toBe('invalid_request_error');
    expect(conflict.code).toBe('idempotency_key_in_use');
    expect(conflict.message).toContain('another in-progress request using this Idempotent Key');
    const refund = await slow;
    const replay = await stripe.refunds.create({ payment_intent: intent.id }, { idempotencyKey: 'refund-1' });
    expect(replay.id).toBe(refund.id);
    expect((await stripe.refunds.list()).data).toHaveLength(1);
  });

  it('lets the SDK retry safely: its automatic key makes a retried POST execute once', async () => {
    // Every SDK POST carries an idempotency key, so a replay through the same key is a no-op.
    const intent = await stripe.paymentIntents.create({ amount: 900, currency: 'usd' });
    const key = intent.lastResponse.idempotencyKey;
    expect(key).toMatch(/^stripe-node-retry-/);
    const again = await stripe.paymentIntents.create(
      { amount: 900, currency: 'usd' },
      { idempotencyKey: key },
    );
    expect(again.id).toBe(intent.id);
  });
});
