/**
 * Bad input the contract cannot catch, against the real service (sandbox Stripe, SQLite):
 *
 * 1. A JSON string holding a lone UTF-16 surrogate (`"\ud800"`) is valid JSON syntax, passes every schema
 *    check, and then cannot be sent to Stripe: the SDK's form encoder (encodeURIComponent) throws a URIError.
 *    It must be refused as a 400 before anything is stored or reserved, not answered 502, and a refund must
 *    not be reserved, queued and retried for minutes over it.
 * 2. A payment_method Stripe does not know is the caller's mistake in that parameter: a 400 that names
 *    `payment_method`, not "404 No such payment intent." on a create.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let auth: Record<string, string>;

beforeAll(async () => {
  svc = await startTestService('sqlite', { API_AUTH: 'on', RATE_LIMIT_PER_MINUTE: '0', LOG_LEVEL: 'warn' });
  const { key } = await createKey(svc.deps.store.apiKeys, { owner: 'edges', kind: 'secret' });
  auth = { authorization: `Bearer ${key}` };
});
afterAll(async () => {
  await svc?.stop();
});

function expectProblem(
  res: { status: number; headers: Headers; json: Record<string, unknown> },
  status: number,
) {
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.json).toMatchObject({ status });
  expect(res.status).toBe(status);
}

// JSON text, written by hand: JSON.stringify would escape the surrogate the same way, but this is explicit.
const LONE = '"\\ud800"';
const LONE_LOW = '"x\\udfffy"';

describe('lone UTF-16 surrogates in JSON strings', () => {
  it.each([
    ['metadata value', `{"amount":100,"currency":"usd","metadata":{"k":${LONE}}}`],
    ['description', `{"amount":100,"currency":"usd","description":${LONE_LOW}}`],
  ])('POST /payment-intent with one in its %s → 400 problem+json, not 502', async (_what, body) => {
    const res = await postJson(`${svc.url}/payment-intent`, body, auth);
    expectProblem(res, 400);
  });

  it('POST /create-checkout-session with one in a product name → 400', async () => {
    const body = `{"line_items":[{"price_data":{"currency":"usd","product_data":{"name":${LONE}},"unit_amount":500},"quantity":1}],"success_url":"https://shop.example.com/ok","cancel_url":"https://shop.example.com/no"}`;
    const res = await postJson(`${svc.url}/create-checkout-session`, body, auth);
    expectProblem(res, 400);
  });

  it('POST /refund with one in metadata → 400, and nothing is reserved against the payment', async () => {
    const pi = await paidIntent(svc.url, 1000, { headers: auth });
    const res = await postJson(
      `${svc.url}/refund`,
      `{"payment_intent_id":"${pi}","amount":400,"request_id":"lone-sync","metadata":{"note":${LONE}}}`,
      auth,
    );
    expectProblem(res, 400);
    const status = await getJson(`${svc.url}/refund-status/lone-sync`, auth);
    expect(status.status).toBe(404);
    const intent = await getJson(`${svc.url}/payment-intent/${pi}`, auth);
    expect(intent.json.amount_refunded).toBe(0);
    // The whole amount is still refundable.
    const full = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 1000 }, auth);
    expect(full.status).toBe(200);
  });

  it('POST /refund-async with one in metadata → 400, never accepted for a worker that can never send it', async () => {
    const pi = await paidIntent(svc.url, 1000, { headers: auth });
    const res = await postJson(
      `${svc.url}/refund-async`,
      `{"payment_intent_id":"${pi}","amount":400,"request_id":"lone-async","metadata":{"note":${LONE}}}`,
      auth,
    );
    expectProblem(res, 400);
    const status = await getJson(`${svc.url}/refund-status/lone-async`, auth);
    expect(status.status).toBe(404);
  });

  it('a well-formed surrogate pair (an emoji, escaped or raw) is still accepted', async () => {
    const escaped = await postJson(
      `${svc.url}/payment-intent`,
      '{"amount":100,"currency":"usd","metadata":{"k":"\\ud83d\\ude00"},"description":"caf\\u00e9 😀"}',
      auth,
    );
    expect(escaped.status).toBe(200);
  });

  it('without a key, such a body is still refused with 401 first', async () => {
    const res = await postJson(
      `${svc.url}/payment-intent`,
      `{"amount":100,"currency":"usd","description":${LONE}}`,
    );
    expectProblem(res, 401);
  });
});

describe('a payment_method Stripe does not know', () => {
  it('POST /payment-intent → 400 naming payment_method, not 404 "No such payment intent."', async () => {
    const res = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 1000, currency: 'usd', payment_method: 'pm_does_not_exist', confirm: true },
      auth,
    );
    expectProblem(res, 400);
    expect(res.json).toMatchObject({ code: 'resource_missing', param: 'payment_method' });
    expect(String(res.json.detail)).not.toMatch(/payment intent/i);
  });
});

describe('confirm without a payment method', () => {
  it('POST /payment-intent with confirm: true and no payment_method → 400, not an unconfirmed 200', async () => {
    const res = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 1000, currency: 'usd', confirm: true },
      auth,
    );
    expectProblem(res, 400);
    expect(JSON.stringify(res.json.errors)).toContain('/body/payment_method');
  });

  it('confirm: false without one is still a plain new intent', async () => {
    const res = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 1000, currency: 'usd', confirm: false },
      auth,
    );
    expect(res.status).toBe(200);
    expect(res.json.status).toBe('requires_payment_method');
  });
});

describe("a payment_method on the SDK's pinned API version (2026-10-28.endive)", () => {
  // That version refuses payment_method_types on a PaymentIntent (400 payment_method_types_no_longer_supported,
  // docs.stripe.com/changelog/endive/2026-09-30/removes-the-payment-method-types-parameter-from-payment-intents-and-
  // setup-intents): every POST /payment-intent with a payment_method answered that 400 against real Stripe.
  it('POST /payment-intent with payment_method and confirm → 200 succeeded, card only', async () => {
    const res = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true },
      auth,
    );
    expect(res.status, res.text).toBe(200);
    expect(res.json.status).toBe('succeeded');
    const pi = await svc.deps.stripe.paymentIntents.retrieve(res.json.paymentIntentId as string);
    expect(pi).toMatchObject({ payment_method_types: ['card'], automatic_payment_methods: null });
  });

  it('and without confirm → 200 requires_confirmation, card only', async () => {
    const res = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 1000, currency: 'usd', payment_method: 'pm_card_visa' },
      auth,
    );
    expect(res.status, res.text).toBe(200);
    expect(res.json.status).toBe('requires_confirmation');
    const pi = await svc.deps.stripe.paymentIntents.retrieve(res.json.paymentIntentId as string);
    expect(pi.payment_method_types).toEqual(['card']);
  });
});
