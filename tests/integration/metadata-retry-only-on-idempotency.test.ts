/**
 * createWithMetadata (src/payments/service.ts) sends Stripe a payment's metadata as taken and, only when Stripe
 * answers idempotency_error (its key used with other parameters), once more with the keys of empty value as an
 * earlier version sent them. Any other failure of the first call must not bring a second create: the answer of a
 * create that Stripe made but whose answer was lost (the connection dropped) is not an idempotency error, and a
 * second call then would be a second try at the customer's card. These pin that a body with a metadata key of
 * empty value ({"note": ""}) whose first create is lost is never sent as sent, makes one payment, and that the client's retry
 * under its Idempotency-Key gets that payment.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../helpers/http.js';
import {
  startSharedStripe,
  startTestService,
  type SharedStripe,
  type TestService,
} from '../helpers/service.js';

let n = 0;
const uniqueKey = (what: string) => `${what}-${Date.now()}-${++n}`;

describe('a create with a metadata key of empty value whose answer is lost', () => {
  let stripe: SharedStripe;
  let svc: TestService;
  beforeAll(async () => {
    stripe = await startSharedStripe();
    svc = await startTestService('sqlite', {
      API_AUTH: 'off',
      RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'silent',
      STRIPE_MAX_NETWORK_RETRIES: '0',
      ...stripe.env,
    });
  });
  afterAll(async () => {
    await stripe?.faults({});
    await svc?.stop();
    await stripe?.close();
  });

  type Captured = {
    requestId: string;
    method: string;
    route: string | null;
    idempotencyKey: string | null;
    params: { metadata?: Record<string, string> } | null;
  };
  async function stripeCalls(): Promise<Captured[]> {
    const res = await fetch(`${stripe.env.STRIPE_API_BASE}/_sandbox/requests`);
    return ((await res.json()) as { data: Captured[] }).data;
  }
  /**
   * The POSTs to `route` the service made at Stripe while `fn` ran. A create the service repeats under the same
   * Stripe idempotency key after a lost answer is the same request at Stripe (it cannot make a second object).
   */
  async function createsDuring(route: string, fn: () => Promise<void>): Promise<Captured[]> {
    const marker = (await stripeCalls()).at(-1)?.requestId;
    await fn();
    const after = await stripeCalls();
    const since = after.slice(after.findIndex((c) => c.requestId === marker) + 1);
    return since.filter((c) => c.method === 'POST' && c.route === route);
  }

  async function intentsFor(order: string): Promise<string[]> {
    const all = await svc.deps.stripe.paymentIntents.list({ limit: 100 });
    return all.data.filter((pi) => pi.metadata?.['order'] === order).map((pi) => pi.id);
  }

  it('a payment intent: no create with the metadata as sent, one payment; the retry gets it', async () => {
    const order = uniqueKey('lost');
    const body = {
      amount: 2500,
      currency: 'usd',
      metadata: { order, note: '' },
      payment_method: 'pm_card_visa',
      confirm: true,
    };
    await stripe.faults({ drop_rate: 1, match: { method: 'POST', path_prefix: '/v1/payment_intents' } });
    let first: Awaited<ReturnType<typeof postJson>> | undefined;
    const creates = await createsDuring('/v1/payment_intents', async () => {
      first = await postJson(`${svc.url}/payment-intent`, body, { 'Idempotency-Key': order });
    });
    await stripe.faults({});
    expect(first!.status).toBeGreaterThanOrEqual(500);
    // Every create under the one Stripe idempotency key, none with the metadata as sent (the note key).
    expect(new Set(creates.map((c) => c.idempotencyKey)).size).toBe(1);
    expect(creates.length).toBeGreaterThan(0);
    expect(creates.filter((c) => c.params?.metadata && 'note' in c.params.metadata)).toEqual([]);
    const made = await intentsFor(order);
    expect(made).toHaveLength(1);

    const retry = await postJson(`${svc.url}/payment-intent`, body, { 'Idempotency-Key': order });
    expect(retry.status, retry.text).toBe(200);
    expect(retry.json['paymentIntentId']).toBe(made[0]);
    expect(await intentsFor(order)).toEqual(made);
  });

  it('a checkout session: no create with the metadata as sent, one session; the retry gets it', async () => {
    const order = uniqueKey('lost-cart');
    const body = {
      line_items: [
        { price_data: { currency: 'usd', product_data: { name: 'Lamp' }, unit_amount: 2500 }, quantity: 1 },
      ],
      success_url: 'https://shop.example.com/ok?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: 'https://shop.example.com/no',
      metadata: { order, note: '' },
    };
    await stripe.faults({ drop_rate: 1, match: { method: 'POST', path_prefix: '/v1/checkout/sessions' } });
    let first: Awaited<ReturnType<typeof postJson>> | undefined;
    const creates = await createsDuring('/v1/checkout/sessions', async () => {
      first = await postJson(`${svc.url}/create-checkout-session`, body, { 'Idempotency-Key': order });
    });
    await stripe.faults({});
    expect(first!.status).toBeGreaterThanOrEqual(500);
    // Every create under the one Stripe idempotency key, none with the metadata as sent (the note key).
    expect(new Set(creates.map((c) => c.idempotencyKey)).size).toBe(1);
    expect(creates.length).toBeGreaterThan(0);
    expect(creates.filter((c) => c.params?.metadata && 'note' in c.params.metadata)).toEqual([]);
    const sessions = (await svc.deps.stripe.checkout.sessions.list({ limit: 100 })).data.filter(
      (s) => s.metadata?.['order'] === order,
    );
    expect(sessions).toHaveLength(1);

    const retry = await postJson(`${svc.url}/create-checkout-session`, body, { 'Idempotency-Key': order });
    expect(retry.status, retry.text).toBe(200);
    expect(retry.json['id']).toBe(sessions[0]!.id);
  });

  it('a declined card: 402, no second try with the metadata as sent', async () => {
    const order = uniqueKey('declined');
    let res: Awaited<ReturnType<typeof postJson>> | undefined;
    const creates = await createsDuring('/v1/payment_intents', async () => {
      res = await postJson(
        `${svc.url}/payment-intent`,
        {
          amount: 2500,
          currency: 'usd',
          metadata: { order, note: '' },
          payment_method: 'pm_card_chargeDeclined',
          confirm: true,
        },
        { 'Idempotency-Key': order },
      );
    });
    expect(res!.status).toBe(402);
    // Every create under the one Stripe idempotency key, none with the metadata as sent (the note key).
    expect(new Set(creates.map((c) => c.idempotencyKey)).size).toBe(1);
    expect(creates.length).toBeGreaterThan(0);
    expect(creates.filter((c) => c.params?.metadata && 'note' in c.params.metadata)).toEqual([]);
    expect(await intentsFor(order)).toHaveLength(1);
  });
});
