/**
 * Publishable keys (ppk_...) are public by design: they sit in a shop's web pages. Idempotency-Key results
 * were kept per owner, shared by the owner's publishable and secret keys, so anyone holding the public key
 * could answer for the shop's server in advance: claim the Idempotency-Key the server is about to use (an
 * order id, say) with another body and the server's request got 422, or with the same body and the server
 * got the browser-made intent replayed, client secret included. A publishable key's keys must be its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let secret: Record<string, string>;
let publishable: Record<string, string>;

beforeAll(async () => {
  svc = await startTestService('sqlite', {
    API_AUTH: 'on',
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
    TRUST_PROXY: '1', // the tests below come from two customers' addresses, through one proxy
  });
  const s = await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' });
  const p = await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'publishable' });
  secret = { authorization: `Bearer ${s.key}` };
  publishable = { authorization: `Bearer ${p.key}` };
});
afterAll(async () => {
  await svc?.stop();
});

describe('Idempotency-Key and publishable keys', () => {
  it("a key claimed through the publishable key does not block the secret key's request (no 422)", async () => {
    const browser = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 100, currency: 'usd' },
      { ...publishable, 'idempotency-key': 'order-1001' },
    );
    expect(browser.status).toBe(200);
    const server = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 5000, currency: 'usd' },
      { ...secret, 'idempotency-key': 'order-1001' },
    );
    expect(server.status).toBe(200);
    expect(server.headers.get('idempotent-replayed')).toBeNull();
  });

  it("the secret key's answer (client secret) is never replayed to the publishable key", async () => {
    const body = { amount: 4200, currency: 'usd' };
    const server = await postJson(`${svc.url}/payment-intent`, body, {
      ...secret,
      'idempotency-key': 'order-1002',
    });
    expect(server.status).toBe(200);
    const browser = await postJson(`${svc.url}/payment-intent`, body, {
      ...publishable,
      'idempotency-key': 'order-1002',
    });
    expect(browser.status).toBe(200);
    expect(browser.headers.get('idempotent-replayed')).toBeNull();
    expect(browser.json.paymentIntentId).not.toBe(server.json.paymentIntentId);
  });

  // One scope for the whole publishable key, which every customer's browser holds: anyone who learnt or guessed a
  // browser's Idempotency-Key and sent the same body was answered with that customer's intent and client secret.
  it("one customer's Idempotency-Key never replays another customer's answer (client secret included)", async () => {
    const body = { amount: 2500, currency: 'usd' };
    const from = (address: string) => ({
      ...publishable,
      'idempotency-key': 'cart-77',
      'x-forwarded-for': address,
    });
    const alice = await postJson(`${svc.url}/payment-intent`, body, from('203.0.113.10'));
    expect(alice.status).toBe(200);
    const mallory = await postJson(`${svc.url}/payment-intent`, body, from('198.51.100.20'));
    expect(mallory.status).toBe(200);
    expect(mallory.headers.get('idempotent-replayed')).toBeNull();
    expect(mallory.json.paymentIntentId).not.toBe(alice.json.paymentIntentId);
    expect(mallory.json.clientSecret).not.toBe(alice.json.clientSecret);
    // Alice's own retry is still answered with her intent.
    const retry = await postJson(`${svc.url}/payment-intent`, body, from('203.0.113.10'));
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.json).toEqual(alice.json);
  });

  it('each kind still gets its own replays', async () => {
    const body = { amount: 900, currency: 'usd' };
    for (const auth of [secret, publishable]) {
      const headers = { ...auth, 'idempotency-key': `again-${auth === secret ? 's' : 'p'}` };
      const first = await postJson(`${svc.url}/payment-intent`, body, headers);
      const second = await postJson(`${svc.url}/payment-intent`, body, headers);
      expect(second.headers.get('idempotent-replayed')).toBe('true');
      expect(second.json).toEqual(first.json);
    }
  });
});
