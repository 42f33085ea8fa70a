/**
 * Stripe takes idempotency keys of up to 255 characters. The service's own keys are made of parts clients and
 * operators choose: STRIPE_IDEMPOTENCY_PREFIX (up to 40), an API key's owner (up to 63), a refund's request_id (up
 * to 128), and for a refund lowered to what is left its amount and a generation. Their longest sum is just over 255,
 * and such a call was refused by Stripe (400) however often it was tried. A key over 255 is now sent shortened: its
 * first characters and a SHA-256 of the whole key, so that the same key is always the same shortened one and two
 * keys differing anywhere are two. A key that fits is sent as it is.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { createStripeClient, type StripeClient } from '../../src/stripe/client.js';

const KEY = 'sk_test_idempotencyKeyLength000000001';
const PREFIX = 'p'.repeat(40);

let sandbox: Sandbox;
let stripe: StripeClient;
beforeAll(async () => {
  sandbox = await startSandbox({ secretKey: KEY });
  stripe = createStripeClient(
    {
      secretKey: KEY,
      apiBase: new URL(sandbox.url),
      timeoutMs: 10_000,
      maxNetworkRetries: 0,
      idempotencyPrefix: PREFIX,
    },
    pino({ level: 'silent' }),
  );
});
afterAll(async () => {
  await sandbox?.close();
});

function createIntent(idempotencyKey: string) {
  return stripe.paymentIntents.create({ amount: 1000, currency: 'usd' }, { idempotencyKey });
}

const sentKeys = () =>
  sandbox
    .capturedRequests()
    .filter((r) => r.method === 'POST' && r.path === '/v1/payment_intents')
    .map((r) => r.idempotencyKey);

describe('idempotency keys longer than Stripe takes', () => {
  it('a key that fits is sent as it is, with the prefix', async () => {
    const key = `refund:${'o'.repeat(63)}/${'r'.repeat(100)}`;
    await createIntent(key);
    expect(sentKeys().at(-1)).toBe(`${PREFIX}:${key}`);
  });

  it('a key over 255 with the prefix is accepted, and stays idempotent and distinct', async () => {
    const base = `refund:${'o'.repeat(63)}/${'r'.repeat(128)}@123456789012`;
    const first = await createIntent(`${base}#10`);
    const again = await createIntent(`${base}#10`);
    const other = await createIntent(`${base}#11`);

    expect(again.id).toBe(first.id);
    expect(other.id).not.toBe(first.id);
    const sent = sentKeys().slice(-3);
    for (const k of sent) expect(k!.length).toBeLessThanOrEqual(255);
    expect(sent[0]).toBe(sent[1]);
    expect(sent[2]).not.toBe(sent[0]);
    // Still recognisably the service's key (prefix and kind first), for whoever reads Stripe's logs.
    expect(sent[0]!.startsWith(`${PREFIX}:refund:`)).toBe(true);
  });
});
