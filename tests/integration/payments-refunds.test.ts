/**
 * Every synchronous operation of the original service, end to end: HTTP → validator → handler → Stripe
 * SDK → sandbox over HTTP, with the ledger on SQLite and on PostgreSQL.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateResponse } from '../helpers/contract.js';
import { getJson, payOnHostedPage, postJson } from '../helpers/http.js';
import { postgresAvailable } from '../helpers/services.js';
import { eventually, startTestService, type Db, type TestService } from '../helpers/service.js';

const readme = JSON.parse(
  readFileSync(new URL('../fixtures/original-readme-examples.json', import.meta.url), 'utf8'),
) as {
  requests: Record<string, Record<string, unknown>>;
  responses: Record<string, { body: Record<string, unknown> }>;
};

const dbs: Db[] = ['sqlite', ...((await postgresAvailable()) ? (['postgres'] as const) : [])];

describe.each(dbs)('payments and refunds on %s', (db) => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService(db);
  });
  afterAll(async () => {
    await svc?.stop();
  });

  async function paidIntent(amount = 10000, currency = 'sgd'): Promise<string> {
    const res = await postJson(`${svc.url}/payment-intent`, {
      amount,
      currency,
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    expect(res.status).toBe(200);
    expect(res.json.status).toBe('succeeded');
    return res.json.paymentIntentId as string;
  }

  async function sandboxRefunds(pi: string) {
    const list = await svc.deps.stripe.refunds.list({ payment_intent: pi, limit: 100 });
    return list.data;
  }

  function expectFieldsOf(operation: string, body: Record<string, unknown>) {
    for (const field of Object.keys(readme.responses[operation]!.body)) expect(body).toHaveProperty(field);
  }

  it("README: POST /create-checkout-session answers the original's url (and an id)", async () => {
    const res = await postJson(`${svc.url}/create-checkout-session`, readme.requests.createCheckoutSession);
    expect(res.status).toBe(200);
    expectFieldsOf('createCheckoutSession', res.json);
    expect(res.json.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/checkout\/cs_/);
    expect(res.json.id).toMatch(/^cs_/);
    expect(res.json.amount_total).toBe(10000);
    expect(validateResponse('createCheckoutSession', 200, res.json)).toEqual([]);

    const got = await getJson(`${svc.url}/checkout-session?session_id=${res.json.id as string}`);
    expect(got.status).toBe(200);
    expectFieldsOf('getCheckoutSession', got.json);
    expect(got.json).toMatchObject({
      amount_total: 10000,
      currency: 'sgd',
      payment_status: 'unpaid',
      payment_intent: null,
    });
  });

  it('a return URL without a host is refused with 400 naming it, before Stripe is asked', async () => {
    const before = (await svc.deps.stripe.checkout.sessions.list({ limit: 100 })).data.length;
    for (const url of ['https:///////x', 'http://', 'https://?x', 'https://#top', 'https:///path']) {
      const res = await postJson(`${svc.url}/create-checkout-session`, {
        ...readme.requests.createCheckoutSession,
        success_url: url,
      });
      expect(res.status, url).toBe(400);
      expect(JSON.stringify(res.json.errors), url).toContain('/body/success_url');
    }
    expect((await svc.deps.stripe.checkout.sessions.list({ limit: 100 })).data).toHaveLength(before);
  });

  it('a success_url with {CHECKOUT_SESSION_ID} percent-encoded is refused, as Stripe would not replace it', async () => {
    // What URLSearchParams makes of the placeholder: Stripe takes it and sends the customer back with
    // `session_id=%7BCHECKOUT_SESSION_ID%7D` instead of the session id.
    const encoded = `https://shop.example/ok?${new URLSearchParams({ session_id: '{CHECKOUT_SESSION_ID}' })}`;
    expect(encoded).toContain('%7BCHECKOUT_SESSION_ID%7D');
    const before = (await svc.deps.stripe.checkout.sessions.list({ limit: 100 })).data.length;
    const res = await postJson(`${svc.url}/create-checkout-session`, {
      ...readme.requests.createCheckoutSession,
      success_url: encoded,
    });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ code: 'placeholder_encoded', param: 'success_url' });
    expect(res.json.errors).toEqual([expect.objectContaining({ path: '/body/success_url' })]);
    expect((await svc.deps.stripe.checkout.sessions.list({ limit: 100 })).data).toHaveLength(before);
  });

  it('a checkout paid on the hosted page shows paid, its payment intent and e-mail', async () => {
    const created = await postJson(`${svc.url}/create-checkout-session`, {
      ...readme.requests.createCheckoutSession,
      metadata: { order_id: 'ord_7' },
    });
    const page = await payOnHostedPage(created.json.url as string);
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toContain(`session_id=${created.json.id as string}`);
    const got = await getJson(`${svc.url}/checkout-session?session_id=${created.json.id as string}`);
    expect(got.json).toMatchObject({
      payment_status: 'paid',
      status: 'complete',
      customer_email: 'buyer@example.com',
      metadata: { order_id: 'ord_7' },
    });
    const pi = got.json.payment_intent as string;
    expect(pi).toMatch(/^pi_/);
    // The intent is visible through its session (the ledger has no row of the intent's own yet).
    const intent = await getJson(`${svc.url}/payment-intent/${pi}`);
    expect(intent.json).toMatchObject({ id: pi, amount: 10000, status: 'succeeded', amount_refunded: 0 });
    const refund = await postJson(`${svc.url}/refund`, { payment_intent_id: pi });
    expect(refund.status).toBe(200);
    expect(refund.json.refund).toMatchObject({ amount: 10000, status: 'succeeded' });
    const after = await getJson(`${svc.url}/payment-intent/${pi}`);
    expect(after.json).toMatchObject({ id: pi, status: 'succeeded', amount_refunded: 10000 });
  });

  it('README: POST /payment-intent and GET /payment-intent/{id}', async () => {
    const res = await postJson(`${svc.url}/payment-intent`, readme.requests.createPaymentIntent);
    expect(res.status).toBe(200);
    expectFieldsOf('createPaymentIntent', res.json);
    expect(res.json.success).toBe(true);
    expect(res.json.clientSecret).toMatch(/^pi_\w+_secret_\w+$/);
    const got = await getJson(`${svc.url}/payment-intent/${res.json.paymentIntentId as string}`);
    expect(got.status).toBe(200);
    expectFieldsOf('getPaymentIntent', got.json);
    expect(got.json).toMatchObject({
      amount: 10000,
      currency: 'sgd',
      status: 'requires_payment_method',
      metadata: {},
    });
    expect(got.text).not.toContain('secret');
  });

  it('README: POST /refund, partial then the rest (amount absent), then nothing is left', async () => {
    const pi = await paidIntent();
    const partial = await postJson(`${svc.url}/refund`, {
      ...readme.requests.createRefund,
      payment_intent_id: pi,
    });
    expect(partial.status).toBe(200);
    expectFieldsOf('createRefund', partial.json);
    expect(partial.json.refund).toMatchObject({
      amount: 5000,
      status: 'succeeded',
      id: expect.stringMatching(/^re_/),
    });
    const half = await getJson(`${svc.url}/payment-intent/${pi}`);
    expect(half.json).toMatchObject({ amount: 10000, amount_refunded: 5000 });
    const rest = await postJson(`${svc.url}/refund`, { payment_intent_id: pi });
    expect(rest.json.refund).toMatchObject({ amount: 5000, status: 'succeeded' });
    const all = await getJson(`${svc.url}/payment-intent/${pi}`);
    expect(all.json).toMatchObject({ amount: 10000, amount_refunded: 10000 });
    const more = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 1 });
    expect(more.status).toBe(409);
    const refunds = await sandboxRefunds(pi);
    expect(refunds.map((r) => r.amount).sort()).toEqual([5000, 5000]);
    const status = await getJson(`${svc.url}/refund-status/${partial.json.request_id as string}`);
    expect(status.json).toMatchObject({
      status: 'succeeded',
      amount: 5000,
      refund_id: partial.json.refund && (partial.json.refund as { id: string }).id,
    });
  });

  it('an over-refund is refused with 409 and Stripe is never asked', async () => {
    const pi = await paidIntent(3000, 'usd');
    const refundCalls: string[] = [];
    const count = (e: { method: string; path: string }) => {
      if (e.method === 'POST' && e.path.startsWith('/v1/refunds')) refundCalls.push(`${e.method} ${e.path}`);
    };
    svc.deps.stripe.on('request', count);
    try {
      const res = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 3001 });
      expect(res.status).toBe(409);
      expect(res.headers.get('content-type')).toMatch(/problem\+json/);
      expect(res.json.code).toBe('amount_exceeds_refundable');
      // The guard works: a refund within the limit does reach Stripe.
      expect(refundCalls).toEqual([]);
      const ok = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 3000 });
      expect(ok.status).toBe(200);
      expect(refundCalls).toEqual(['POST /v1/refunds']);
    } finally {
      svc.deps.stripe.off('request', count);
    }
    expect((await sandboxRefunds(pi)).map((r) => r.amount)).toEqual([3000]);
  });

  it('20 concurrent refunds of one intent never exceed its amount (ledger and sandbox agree)', async () => {
    const pi = await paidIntent(10000, 'eur');
    const results = await Promise.all(
      Array.from({ length: 20 }, () => postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 700 })),
    );
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 409);
    expect(ok.length + refused.length).toBe(20);
    expect(ok).toHaveLength(14); // 14 × 700 = 9800 ≤ 10000 < 15 × 700
    const sandbox = await sandboxRefunds(pi);
    const sandboxTotal = sandbox.reduce((s, r) => s + r.amount, 0);
    const ledgerTotal = await svc.deps.store.refunds.sumCommitted(pi);
    expect(sandboxTotal).toBe(9800);
    expect(ledgerTotal).toBe(9800);
  });

  it('a declined card answers 402 with Stripe code and decline_code', async () => {
    const res = await postJson(`${svc.url}/payment-intent`, {
      amount: 2000,
      currency: 'usd',
      payment_method: 'pm_card_chargeDeclinedInsufficientFunds',
      confirm: true,
    });
    expect(res.status).toBe(402);
    expect(res.json).toMatchObject({
      status: 402,
      code: 'card_declined',
      decline_code: 'insufficient_funds',
    });
    expect(validateResponse('createPaymentIntent', 402, res.json, 'application/problem+json')).toEqual([]);
  });

  it('an expired card answers 402 with its code, no decline_code, and not the card field Stripe names', async () => {
    // Stripe names the field at fault (`param: exp_month`); the 402 says what README's table says: code and
    // decline_code (none here: the bank gave none).
    const res = await postJson(`${svc.url}/payment-intent`, {
      amount: 2000,
      currency: 'usd',
      payment_method: 'pm_card_chargeDeclinedExpiredCard',
      confirm: true,
    });
    expect(res.status).toBe(402);
    expect(res.json).toMatchObject({ status: 402, code: 'expired_card', detail: 'Your card has expired.' });
    expect(res.json).not.toHaveProperty('decline_code');
    expect(res.json).not.toHaveProperty('param');
    expect(validateResponse('createPaymentIntent', 402, res.json, 'application/problem+json')).toEqual([]);
  });

  it('an unknown payment intent answers 404 on read and refund', async () => {
    const read = await getJson(`${svc.url}/payment-intent/pi_doesnotexist123`);
    expect(read.status).toBe(404);
    expect(read.json.code).toBe('resource_missing');
    const refund = await postJson(`${svc.url}/refund`, { payment_intent_id: 'pi_doesnotexist123' });
    expect(refund.status).toBe(404);
    const session = await getJson(`${svc.url}/checkout-session?session_id=cs_test_nope`);
    expect(session.status).toBe(404);
  });

  it('refunding an unpaid intent is refused without a Stripe refund', async () => {
    const res = await postJson(`${svc.url}/payment-intent`, { amount: 1500, currency: 'usd' });
    const refund = await postJson(`${svc.url}/refund`, { payment_intent_id: res.json.paymentIntentId });
    expect(refund.status).toBe(409);
    expect(refund.json.code).toBe('payment_not_refundable');
  });

  it('zero-decimal currencies: amounts are whole yen', async () => {
    const pi = await paidIntent(500, 'jpy');
    const intent = await getJson(`${svc.url}/payment-intent/${pi}`);
    expect(intent.json).toMatchObject({ amount: 500, currency: 'jpy' });
    const refund = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 120 });
    expect(refund.json.refund).toMatchObject({ amount: 120, currency: 'jpy' });
    const rest = await postJson(`${svc.url}/refund`, { payment_intent_id: pi });
    expect(rest.json.refund).toMatchObject({ amount: 380 });
  });

  it('a currency Stripe does not support answers 400 before Stripe is called', async () => {
    const res = await postJson(`${svc.url}/payment-intent`, { amount: 1000, currency: 'xyz' });
    expect(res.status).toBe(400);
    expect(res.json.code).toBe('currency_not_supported');
  });

  it("a reason outside Stripe's values is refused with 400", async () => {
    const pi = await paidIntent(1000, 'usd');
    const res = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, reason: 'because' });
    expect(res.status).toBe(400);
    expect((res.json.errors as { path: string }[])[0]!.path).toBe('/body/reason');
  });

  it('a Stripe outage answers 503 with Retry-After, keeps the amount reserved, and the refund completes later exactly once', async () => {
    const pi = await paidIntent(4000, 'usd');
    await svc.faults({ error_rate: 1, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    const res = await postJson(`${svc.url}/refund`, {
      payment_intent_id: pi,
      amount: 2500,
      request_id: `outage-${db}`,
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(res.json.code).toBe('upstream_unavailable');
    // While the outcome is unknown the amount stays reserved: no over-refund can slip in.
    const over = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 2000 });
    expect(over.status).toBe(409);
    await svc.faults({});
    const settled = await eventually(
      () => getJson(`${svc.url}/refund-status/outage-${db}`),
      (r) => r.json.status === 'succeeded',
    );
    expect(settled.json).toMatchObject({ status: 'succeeded', amount: 2500 });
    const refunds = await sandboxRefunds(pi);
    expect(refunds).toHaveLength(1);
    expect(refunds[0]!.amount).toBe(2500);
  });

  it('Stripe rejecting the service key answers 502 and leaks nothing', async () => {
    const bad = await startTestService(db, {
      STRIPE_SECRET_KEY: 'sk_test_wrongkey123',
      STRIPE_API_BASE: svc.deps.sandbox!.url,
      API_AUTH: 'off',
    });
    try {
      const res = await postJson(`${bad.url}/payment-intent`, { amount: 1000, currency: 'usd' });
      expect(res.status).toBe(502);
      expect(res.json.code).toBe('upstream_authentication');
      expect(res.text).not.toContain('wrongkey');
      expect(bad.lines.join('\n')).not.toContain('wrongkey123');
    } finally {
      await bad.stop();
    }
  });
});
