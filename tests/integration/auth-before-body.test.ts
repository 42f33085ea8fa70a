/**
 * With API keys on, a request without a valid key holds nothing: no place under MAX_CONCURRENT_REQUESTS, no body
 * read.
 *
 * The key used to be checked by the contract validator's security step, after the cap on requests at work had
 * counted the request and after its body had been read. Anyone without a key could hold every place: with
 * MAX_CONCURRENT_REQUESTS=10, ten keyless POSTs sending their bodies slowly (each held until REQUEST_TIMEOUT_MS)
 * made a keyed client's requests answer 503 `overloaded`. Now the key is looked up from the headers alone, before
 * the cap and the body; a request without a valid one is answered at once (401, or the 404 or 405 of a path or
 * method the contract does not have, as before), and the key's lookup is the only one of the request.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { slowPost } from '../helpers/slow-post.js';

const CAP = 4;
let svc: TestService;
let key: string;
let readOnlyKey: string;

beforeAll(async () => {
  svc = await startTestService('sqlite', {
    API_AUTH: 'on',
    MAX_CONCURRENT_REQUESTS: String(CAP),
    // Long enough that no held request is answered 408 (freeing its place) while the test runs.
    REQUEST_TIMEOUT_MS: '20000',
    RATE_LIMIT_PER_MINUTE: '0',
    // The refusals below all come from one address; the limit on them has tests of its own.
    AUTH_FAILURES_PER_MINUTE: '1000',
    LOG_LEVEL: 'warn',
  });
  key = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' })).key;
  readOnlyKey = (
    await createKey(svc.deps.store.apiKeys, {
      owner: 'shop',
      kind: 'secret',
      scopes: ['payments:read', 'refunds:read'],
    })
  ).key;
});
afterAll(async () => {
  vi.restoreAllMocks();
  await svc?.stop();
});

/** The answer heads of `held`, once each has one (or 'still reading' for those that have none after 5 s). */
async function headsOf(held: { head: Promise<string> }[]): Promise<string[]> {
  const heads: (string | undefined)[] = held.map(() => undefined);
  held.forEach((h, i) => void h.head.then((a) => (heads[i] = a)));
  await eventually(
    async () => heads.filter((a) => a !== undefined).length,
    (n) => n === held.length,
    5_000,
  );
  return heads.map((a) => a ?? 'still reading');
}

const intent = (authorization?: string) =>
  postJson(
    `${svc.url}/payment-intent`,
    { amount: 1000, currency: 'usd' },
    authorization === undefined ? {} : { authorization },
  );

describe('a request without a valid key', () => {
  it('takes no place under MAX_CONCURRENT_REQUESTS and is answered 401 before its body is read', async () => {
    const unknownKey = `psk_${'x'.repeat(43)}`;
    const keyless = [
      ...Array.from({ length: 2 * CAP }, () => slowPost(svc.url, '/payment-intent')),
      slowPost(svc.url, '/refund', [`Authorization: Bearer ${unknownKey}`]),
      slowPost(svc.url, '/refund-async', ['Authorization: Bearer not-a-key']),
      slowPost(svc.url, '/payment-intent', [`Authorization: Bearer ${key}`, `Authorization: Bearer ${key}`]),
    ];
    try {
      const heads = await headsOf(keyless);
      // While they are all still open, a keyed client is served (it was answered 503 overloaded).
      const served = await intent(`Bearer ${key}`);
      expect(served.status).toBe(200);
      expect(served.json.status).toBe('requires_payment_method');
      for (const head of heads) {
        expect(head).toMatch(/^HTTP\/1\.1 401 /);
        expect(head).toMatch(/^content-type: application\/problem\+json/im);
        expect(head).toMatch(/^www-authenticate: Bearer/im);
      }
    } finally {
      for (const k of keyless) k.close();
    }
  });

  it('is still answered 404 on a path, and 405 for a method, the contract does not have, body unread', async () => {
    const held = [slowPost(svc.url, '/no-such-path'), slowPost(svc.url, '/refund-status/abc')];
    try {
      const heads = await headsOf(held);
      expect(heads[0]).toMatch(/^HTTP\/1\.1 404 /);
      expect(heads[1]).toMatch(/^HTTP\/1\.1 405 /);
    } finally {
      for (const h of held) h.close();
    }
  });

  it('gets 401 whatever its body: too large or not JSON is not looked at', async () => {
    const large = await postJson(`${svc.url}/payment-intent`, `{"amount":1000,"x":"${'a'.repeat(20_000)}"}`);
    expect(large.status).toBe(401);
    const malformed = await postJson(`${svc.url}/payment-intent`, '{"amount":');
    expect(malformed.status).toBe(401);
    expect(malformed.json).toMatchObject({ status: 401, code: 'unauthenticated' });
    // With a key the body is read and judged as before.
    expect(
      (await postJson(`${svc.url}/payment-intent`, '{"amount":', { authorization: `Bearer ${key}` })).status,
    ).toBe(400);
  });
});

describe('a request with a valid key', () => {
  it('still waits its turn under MAX_CONCURRENT_REQUESTS while it sends its body', async () => {
    const held = Array.from({ length: CAP }, () =>
      slowPost(svc.url, '/payment-intent', [`Authorization: Bearer ${key}`]),
    );
    try {
      // Each holds a place until its body arrives: the next keyed request finds none.
      const refused = await eventually(
        () => intent(`Bearer ${key}`),
        (r) => r.status === 503,
        10_000,
      );
      expect(refused.json.code).toBe('overloaded');
    } finally {
      for (const h of held) h.close();
    }
    await eventually(
      () => intent(`Bearer ${key}`),
      (r) => r.status === 200,
      10_000,
    );
  });

  it('is looked up once per request, and its scopes are still checked (403)', async () => {
    const lookups = vi.spyOn(svc.deps.store.apiKeys, 'findActiveByHash');
    try {
      const status = await fetch(`${svc.url}/refund-status/nope`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(status.status).toBe(404);
      expect(lookups).toHaveBeenCalledTimes(1);
      const write = await postJson(
        `${svc.url}/refund`,
        { payment_intent_id: 'pi_123abc' },
        { authorization: `Bearer ${readOnlyKey}` },
      );
      expect(write.status).toBe(403);
      expect(write.json.code).toBe('insufficient_scope');
      expect(lookups).toHaveBeenCalledTimes(2);
    } finally {
      lookups.mockRestore();
    }
  });
});
