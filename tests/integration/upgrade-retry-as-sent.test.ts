/**
 * A payment an earlier version made at Stripe whose answer was lost (the process was killed during the update),
 * retried with the very same body and Idempotency-Key at an updated process, must get that payment: Stripe's
 * idempotency key is derived from the client's Idempotency-Key only (stripeKey in src/payments/service.ts), and
 * Stripe answers other parameters under it with 400 idempotency_error (the service's 422 idempotency_key_reused),
 * after which a client retrying under a new key charges the customer twice.
 *
 * Versions before 92d2648 sent a metadata key of empty value (`{"note": ""}`) to Stripe as is; since, the service
 * takes the body without it (as-taken.ts) and sent Stripe none. Both make the same object at Stripe (on create an
 * empty value is a key not set), but Stripe compares the parameters. The service sends Stripe the metadata as taken
 * and, when Stripe answers that the key was used with other parameters, once more as the client sent it.
 *
 * The other spellings the service takes otherwise than sent leave no such hole, and a test here pins that: an
 * upper-case currency was refused by the contract (`^[a-z]{3}$`) until be7f98d, which lower-cased it before Stripe
 * (as e64d848's as-taken.ts does); an empty description was never sent (5a671a6 on); empty metadata (`{}`) is left
 * out of the request by the SDK, as before 2eaf02c.
 *
 * The earlier version's Stripe call is made here directly, with the parameters it sent, under the key the service
 * derives (the caller's scope: '' with API keys off, the owner with a secret key).
 */
import { createHash } from 'node:crypto';
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

/** Stripe's idempotency key for the service's create call (`kind`: payment_intent or checkout). */
const stripeKeyOf = (kind: string, scope: string, idempotencyKey: string) =>
  `${kind}:${createHash('sha256').update(`${scope}\n${idempotencyKey}`).digest('hex')}`;

let n = 0;
const uniqueKey = (what: string) => `${what}-${Date.now()}-${++n}`;

const intentBody = (order: string, metadata: Record<string, string> = { order, note: '' }) => ({
  amount: 2500,
  currency: 'usd',
  metadata,
  payment_method: 'pm_card_visa',
  confirm: true,
});

/** The parameters every version sent Stripe for intentBody, the metadata aside. */
const intentParams = (metadata: Record<string, string>): Stripe.PaymentIntentCreateParams => ({
  amount: 2500,
  currency: 'usd',
  metadata,
  payment_method: 'pm_card_visa',
  allowed_payment_method_types: ['card'],
  confirm: true,
});

const checkoutBody = (metadata: Record<string, string>) => ({
  line_items: [
    { price_data: { currency: 'usd', product_data: { name: 'Lamp' }, unit_amount: 2500 }, quantity: 1 },
  ],
  success_url: 'https://shop.example.com/ok?session_id={CHECKOUT_SESSION_ID}',
  cancel_url: 'https://shop.example.com/no',
  metadata,
});

describe('API keys off', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('sqlite', {
      API_AUTH: 'off',
      RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'silent',
    });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  async function intentsFor(order: string): Promise<string[]> {
    const all = await svc.deps.stripe.paymentIntents.list({ limit: 100 });
    return all.data.filter((pi) => pi.metadata?.['order'] === order).map((pi) => pi.id);
  }

  it('an identical retry of a payment an earlier version charged with {"note": ""} gets that payment, not 422', async () => {
    const idempotencyKey = uniqueKey('order');
    const body = intentBody(idempotencyKey);
    // The earlier version's call: the metadata as sent (note: ""), then its answer lost.
    const charged = await svc.deps.stripe.paymentIntents.create(intentParams(body.metadata), {
      idempotencyKey: stripeKeyOf('payment_intent', '', idempotencyKey),
    });
    expect(charged.status).toBe('succeeded');

    const retry = await postJson(`${svc.url}/payment-intent`, body, { 'Idempotency-Key': idempotencyKey });
    expect(retry.status, retry.text).toBe(200);
    expect(retry.json['paymentIntentId']).toBe(charged.id);
    expect(retry.json['status']).toBe('succeeded');
    // Recorded, as Stripe keeps it (no note), and nothing more charged.
    expect((await svc.deps.store.payments.get(charged.id))?.metadata).toEqual({ order: idempotencyKey });
    expect(await intentsFor(idempotencyKey)).toEqual([charged.id]);
  });

  it('an identical retry of a checkout session an earlier version made with {"note": ""} gets that session', async () => {
    const idempotencyKey = uniqueKey('cart');
    const metadata = { order: idempotencyKey, note: '' };
    const made = await svc.deps.stripe.checkout.sessions.create(
      {
        mode: 'payment',
        line_items: [
          { quantity: 1, price_data: { currency: 'usd', unit_amount: 2500, product_data: { name: 'Lamp' } } },
        ],
        success_url: 'https://shop.example.com/ok?session_id={CHECKOUT_SESSION_ID}',
        cancel_url: 'https://shop.example.com/no',
        metadata,
        payment_intent_data: { metadata },
      },
      { idempotencyKey: stripeKeyOf('checkout', '', idempotencyKey) },
    );

    const retry = await postJson(`${svc.url}/create-checkout-session`, checkoutBody(metadata), {
      'Idempotency-Key': idempotencyKey,
    });
    expect(retry.status, retry.text).toBe(200);
    expect(retry.json['id']).toBe(made.id);
    expect((await svc.deps.store.payments.get(made.id))?.metadata).toEqual({ order: idempotencyKey });
  });

  it('a retry spelt without the empty key, after the answer to the first (with it) was lost, gets the payment', async () => {
    const idempotencyKey = uniqueKey('lost');
    const key = { 'Idempotency-Key': idempotencyKey };
    await svc.faults({ drop_rate: 1, match: { method: 'POST', path_prefix: '/v1/payment_intents' } });
    const first = await postJson(`${svc.url}/payment-intent`, intentBody(idempotencyKey), key);
    await svc.faults({});
    expect(first.status, first.text).toBe(503);
    const [charged] = await intentsFor(idempotencyKey);
    expect(charged).toBeDefined();

    // The same body as the service takes it, spelt without the key of empty value.
    const retry = await postJson(
      `${svc.url}/payment-intent`,
      intentBody(idempotencyKey, { order: idempotencyKey }),
      key,
    );
    expect(retry.status, retry.text).toBe(200);
    expect(retry.json['paymentIntentId']).toBe(charged);
    expect(await intentsFor(idempotencyKey)).toEqual([charged]);
  });

  it('a payment an earlier version made with another value under the key is still 422 (nothing made)', async () => {
    const idempotencyKey = uniqueKey('other');
    const made = await svc.deps.stripe.paymentIntents.create(
      intentParams({ order: idempotencyKey, note: 'gift' }),
      { idempotencyKey: stripeKeyOf('payment_intent', '', idempotencyKey) },
    );
    const retry = await postJson(`${svc.url}/payment-intent`, intentBody(idempotencyKey), {
      'Idempotency-Key': idempotencyKey,
    });
    expect(retry.status, retry.text).toBe(422);
    expect(retry.json['code']).toBe('idempotency_key_reused');
    expect(await intentsFor(idempotencyKey)).toEqual([made.id]);
  });

  it('an upper-case currency, an empty description and empty metadata reach Stripe as earlier versions sent them', async () => {
    // What versions before e64d848 and 2eaf02c sent for such a body: the currency lower-cased (be7f98d), no
    // description, `metadata: {}` (which the SDK leaves out).
    const idempotencyKey = uniqueKey('spelling');
    const charged = await svc.deps.stripe.paymentIntents.create(
      { ...intentParams({}), amount: 2600 },
      { idempotencyKey: stripeKeyOf('payment_intent', '', idempotencyKey) },
    );
    const retry = await postJson(
      `${svc.url}/payment-intent`,
      { ...intentBody('', {}), amount: 2600, currency: 'USD', description: '' },
      { 'Idempotency-Key': idempotencyKey },
    );
    expect(retry.status, retry.text).toBe(200);
    expect(retry.json['paymentIntentId']).toBe(charged.id);

    const sessionKey = uniqueKey('spelling-cart');
    const made = await svc.deps.stripe.checkout.sessions.create(
      {
        mode: 'payment',
        line_items: [
          { quantity: 1, price_data: { currency: 'usd', unit_amount: 2500, product_data: { name: 'Lamp' } } },
        ],
        success_url: 'https://shop.example.com/ok?session_id={CHECKOUT_SESSION_ID}',
        cancel_url: 'https://shop.example.com/no',
        metadata: {},
        payment_intent_data: { metadata: {} },
      },
      { idempotencyKey: stripeKeyOf('checkout', '', sessionKey) },
    );
    const body = checkoutBody({});
    const item = body.line_items[0]!;
    const spelt = {
      ...body,
      line_items: [
        {
          ...item,
          price_data: {
            ...item.price_data,
            currency: 'USD',
            product_data: { name: 'Lamp', description: '' },
          },
        },
      ],
    };
    const session = await postJson(`${svc.url}/create-checkout-session`, spelt, {
      'Idempotency-Key': sessionKey,
    });
    expect(session.status, session.text).toBe(200);
    expect(session.json['id']).toBe(made.id);
  });
});

describe('API keys on: the metadata names the owner too', () => {
  let svc: TestService;
  let secret: Record<string, string>;
  beforeAll(async () => {
    svc = await startTestService('sqlite', {
      API_AUTH: 'on',
      RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'silent',
    });
    const s = await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' });
    secret = { authorization: `Bearer ${s.key}` };
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('an identical retry of a payment an earlier version charged with {"note": ""} gets that payment, not 422', async () => {
    const idempotencyKey = uniqueKey('owned');
    const body = intentBody(idempotencyKey);
    const charged = await svc.deps.stripe.paymentIntents.create(
      intentParams({ ...body.metadata, payment_service_owner: 'shop' }),
      { idempotencyKey: stripeKeyOf('payment_intent', 'shop', idempotencyKey) },
    );
    const retry = await postJson(`${svc.url}/payment-intent`, body, {
      ...secret,
      'Idempotency-Key': idempotencyKey,
    });
    expect(retry.status, retry.text).toBe(200);
    expect(retry.json['paymentIntentId']).toBe(charged.id);
    expect((await svc.deps.store.payments.get(charged.id))?.owner).toBe('shop');
  });
});
