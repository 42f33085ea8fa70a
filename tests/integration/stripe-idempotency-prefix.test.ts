/**
 * Stripe keeps idempotency keys per account for a day. Two ledgers on one Stripe account (two deployments, or one
 * whose database was reset) make the same keys from the same request ids and Idempotency-Keys: the second ledger's
 * refund `order-1` was refused by Stripe (409 `idempotency_conflict`), and its payment with a reused
 * Idempotency-Key was answered with the first ledger's payment intent, money it never took. STRIPE_IDEMPOTENCY_PREFIX,
 * different for each ledger, keeps their keys apart.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { createStripeClient } from '../../src/stripe/client.js';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

const KEY = 'sk_test_oneAccountForTwoLedgers000001';

let sandbox: Sandbox;
const started: TestService[] = [];
beforeAll(async () => {
  sandbox = await startSandbox({ secretKey: KEY });
});
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
  await sandbox?.close();
});

async function ledger(prefix?: string): Promise<TestService> {
  const svc = await startTestService('sqlite', {
    STRIPE_SECRET_KEY: KEY,
    STRIPE_API_BASE: sandbox.url,
    API_AUTH: 'off',
    ...(prefix ? { STRIPE_IDEMPOTENCY_PREFIX: prefix } : {}),
  });
  started.push(svc);
  return svc;
}

async function pay(svc: TestService, idempotencyKey?: string): Promise<string> {
  const res = await postJson(
    `${svc.url}/payment-intent`,
    { amount: 2500, currency: 'usd', payment_method: 'pm_card_visa', confirm: true },
    idempotencyKey ? { 'idempotency-key': idempotencyKey } : {},
  );
  expect(res.status, res.text).toBe(200);
  return res.json.paymentIntentId as string;
}

const refund = (svc: TestService, pi: string, requestId: string) =>
  postJson(`${svc.url}/refund`, { payment_intent_id: pi, request_id: requestId });

describe('two ledgers on one Stripe account', () => {
  it('without a prefix, the second ledger cannot refund `order-1` and is handed the first one’s payment', async () => {
    const [a, b] = [await ledger(), await ledger()];
    const first = await refund(a, await pay(a), 'order-1');
    expect(first.status, first.text).toBe(200);
    const second = await refund(b, await pay(b), 'order-1');
    expect(second.status, second.text).toBe(409);
    expect(second.json.code).toBe('idempotency_conflict');

    expect(await pay(b, 'checkout-7')).toBe(await pay(a, 'checkout-7'));
  });

  it('with a prefix each, both refund `order-1` and each takes its own payment', async () => {
    const [a, b] = [await ledger('shop-a'), await ledger('shop-b')];
    const [piA, piB] = [await pay(a), await pay(b)];
    const [first, second] = [await refund(a, piA, 'order-1'), await refund(b, piB, 'order-1')];
    expect(first.status, first.text).toBe(200);
    expect(second.status, second.text).toBe(200);
    expect((first.json.refund as { payment_intent: string }).payment_intent).toBe(piA);
    expect((second.json.refund as { payment_intent: string }).payment_intent).toBe(piB);

    const [payA, payB] = [await pay(a, 'checkout-8'), await pay(b, 'checkout-8')];
    expect(payA).not.toBe(payB);
    // A retry on one ledger is still the same payment.
    expect(await pay(a, 'checkout-8')).toBe(payA);

    const keys = sandbox
      .capturedRequests()
      .filter((r) => r.method === 'POST' && r.path === '/v1/refunds')
      .map((r) => r.idempotencyKey);
    expect(keys).toEqual(expect.arrayContaining(['shop-a:refund:order-1', 'shop-b:refund:order-1']));
  });

  // A guard: the prefix is put on each attempt the SDK sends, and must be the same on each.
  it("the SDK's retries of a call carry the same prefixed key, so a lost answer makes one refund", async () => {
    const svc = await ledger();
    const pi = await pay(svc);
    const stripe = createStripeClient(
      {
        secretKey: KEY,
        apiBase: new URL(sandbox.url),
        timeoutMs: 5000,
        maxNetworkRetries: 2,
        idempotencyPrefix: 'shop-c',
      },
      pino({ level: 'silent' }),
    );
    await fetch(`${sandbox.url}/_sandbox/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ drop_rate: 1, match: { method: 'POST', path_prefix: '/v1/refunds' } }),
    });
    try {
      await expect(
        stripe.refunds.create({ payment_intent: pi, amount: 100 }, { idempotencyKey: 'refund:lost-answer' }),
      ).rejects.toThrow();
    } finally {
      await fetch(`${sandbox.url}/_sandbox/faults`, { method: 'DELETE' });
    }
    const attempts = sandbox
      .capturedRequests()
      .filter((r) => r.path === '/v1/refunds' && r.idempotencyKey?.endsWith('refund:lost-answer'));
    expect(attempts.map((r) => r.idempotencyKey)).toEqual([
      'shop-c:refund:lost-answer',
      'shop-c:refund:lost-answer',
      'shop-c:refund:lost-answer',
    ]);
    expect((await stripe.refunds.list({ payment_intent: pi })).data).toHaveLength(1);
  });
});
