/**
 * Requests with a publishable key hold at most MAX_CONCURRENT_PUBLISHABLE_REQUESTS (by default half) of the places
 * under MAX_CONCURRENT_REQUESTS, so that requests with a secret key always find room.
 *
 * A publishable key (`ppk_...`) is in the shop's pages: anyone can read it out and send, with it, POSTs to the two
 * operations it may call whose bodies come slowly, each holding a place until REQUEST_TIMEOUT_MS. With
 * MAX_CONCURRENT_REQUESTS=4, four of them made the shop's back end (a secret key) answer 503 `overloaded` for as
 * long as they were kept open. Now the publishable requests beyond their share are answered 503 `overloaded` at
 * once, and a secret key's request is served.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createKey, hashKey, PUBLISHABLE_SCOPES } from '../../src/auth/api-keys.js';
import { postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { slowPost } from '../helpers/slow-post.js';

const CAP = 4;
let svc: TestService;
let secretKey: string;
let publishableKey: string;

// A service of its own for each test: a place is free again only once the service has seen its client go away,
// so requests one test closed could otherwise still hold places when the next begins.
beforeEach(async () => {
  svc = await startTestService('sqlite', {
    API_AUTH: 'on',
    MAX_CONCURRENT_REQUESTS: String(CAP),
    // Long enough that no held request is answered 408 (freeing its place) while the test runs.
    REQUEST_TIMEOUT_MS: '20000',
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
  });
  secretKey = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' })).key;
  publishableKey = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'publishable' })).key;
});
afterEach(async () => {
  await svc?.stop();
});

const intent = (key: string) =>
  postJson(
    `${svc.url}/payment-intent`,
    { amount: 1000, currency: 'usd' },
    { authorization: `Bearer ${key}` },
  );

describe('requests with a publishable key', () => {
  it('hold at most half of MAX_CONCURRENT_REQUESTS: a secret key is served while they send their bodies slowly', async () => {
    const paths = ['/payment-intent', '/create-checkout-session'];
    const held = Array.from({ length: 2 * CAP }, (_, i) =>
      slowPost(svc.url, paths[i % 2]!, [`Authorization: Bearer ${publishableKey}`]),
    );
    try {
      // However many of them the service let in, those it did not are answered at once.
      await eventually(
        async () => held.filter((h) => h.answered()).length,
        (n) => n >= CAP,
        10_000,
      );
      // While they are all still open, the back end's secret key is served (it was answered 503 overloaded).
      const served = await intent(secretKey);
      expect(served.status).toBe(200);
      expect(served.json.status).toBe('requires_payment_method');

      // Half the places went to publishable requests, the others were refused at once with Retry-After.
      const answered = await eventually(
        async () => held.filter((h) => h.answered()),
        (a) => a.length === 2 * CAP - CAP / 2,
        10_000,
      );
      expect(answered).toHaveLength(2 * CAP - CAP / 2);
      for (const h of answered) {
        const head = await h.head;
        expect(head).toMatch(/^HTTP\/1\.1 503 /);
        expect(head).toMatch(/^retry-after: 1\r?$/im);
        expect(head).toMatch(/^content-type: application\/problem\+json/im);
      }
      const refused = await intent(publishableKey);
      expect(refused.status).toBe(503);
      expect(refused.json).toMatchObject({ code: 'overloaded', retry_after: 1 });
      expect(refused.json.detail).toMatch(/publishable/i);
    } finally {
      for (const h of held) h.close();
    }
    // Their places are free again once they are gone.
    const again = await eventually(
      () => intent(publishableKey),
      (r) => r.status === 200,
      10_000,
    );
    expect(again.json.status).toBe('requires_payment_method');
  });

  it('still count under MAX_CONCURRENT_REQUESTS: their share adds no place to it', async () => {
    const held = [
      ...Array.from({ length: CAP / 2 }, () =>
        slowPost(svc.url, '/payment-intent', [`Authorization: Bearer ${publishableKey}`]),
      ),
      ...Array.from({ length: CAP / 2 }, () =>
        slowPost(svc.url, '/payment-intent', [`Authorization: Bearer ${secretKey}`]),
      ),
    ];
    try {
      // Half the places are publishable requests', the other half secret ones': the cap is full for a secret key.
      const refused = await eventually(
        () => intent(secretKey),
        (r) => r.status === 503,
        10_000,
      );
      expect(refused.json).toMatchObject({
        code: 'overloaded',
        retry_after: 1,
        detail: 'The service is at its limit of requests in progress. Retry shortly.',
      });
    } finally {
      for (const h of held) h.close();
    }
    await eventually(
      () => intent(secretKey),
      (r) => r.status === 200,
      10_000,
    );
  });

  it('include a psk_ key recorded as publishable (API_KEYS: a hashed entry with the publishable scope)', async () => {
    // Restricted as a publishable key by its record, whatever its form: its requests share the same places.
    const key = `psk_${randomBytes(32).toString('base64url')}`;
    await svc.deps.store.apiKeys.insert({
      id: `key_${randomBytes(8).toString('hex')}`,
      owner: 'shop',
      name: 'shop pages',
      kind: 'publishable',
      prefix: key.slice(0, 12),
      hash: hashKey(key),
      scopes: [...PUBLISHABLE_SCOPES],
    });
    const held = Array.from({ length: CAP }, () =>
      slowPost(svc.url, '/payment-intent', [`Authorization: Bearer ${key}`]),
    );
    try {
      const answered = await eventually(
        async () => held.filter((h) => h.answered()),
        (a) => a.length === CAP / 2,
        10_000,
      );
      for (const h of answered) expect(await h.head).toMatch(/^HTTP\/1\.1 503 /);
      const served = await intent(secretKey);
      expect(served.status).toBe(200);
    } finally {
      for (const h of held) h.close();
    }
  });
});
