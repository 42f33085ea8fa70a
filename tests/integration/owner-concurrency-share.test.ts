/**
 * MAX_CONCURRENT_REQUESTS_PER_OWNER: with API keys on, the owners (tenants) of one service share
 * MAX_CONCURRENT_REQUESTS. Publishable keys hold at most their share (publishable-cap.test.ts), but secret keys had
 * none: requests with one owner's secret key whose bodies come slowly each held a place until REQUEST_TIMEOUT_MS (the
 * per-key rate limit is applied only after the body is read, so it does not bound them), and with every place held,
 * every other owner's requests were answered 503 `overloaded` for as long as that went on. With the setting, one
 * owner's requests hold at most that many places; the rest are answered 503 `overloaded` with Retry-After at once.
 * Unset (the default), one owner may still hold every place: a service with one owner keeps its whole capacity.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { getJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { slowPost } from '../helpers/slow-post.js';

// Room for two owners' shares and more: a refusal below is an owner's share's, not the service's cap.
const CAP = 6;
const PER_OWNER = 2;
let svc: TestService | undefined;
const keys: Record<string, string> = {};

// A service of its own for each test: a place is free again only once the service has seen its client go away.
async function start(env: Record<string, string> = {}) {
  svc = await startTestService('sqlite', {
    API_AUTH: 'on',
    MAX_CONCURRENT_REQUESTS: String(CAP),
    // Long enough that no held request is answered 408 (freeing its place) while the test runs.
    REQUEST_TIMEOUT_MS: '20000',
    LOG_LEVEL: 'warn',
    ...env,
  });
  const store = svc.deps.store.apiKeys;
  keys.shop = (await createKey(store, { owner: 'shop', kind: 'secret' })).key;
  keys.rival = (await createKey(store, { owner: 'rival', kind: 'secret' })).key;
  keys.rival2 = (await createKey(store, { owner: 'rival', kind: 'secret' })).key;
  keys.rivalBrowser = (await createKey(store, { owner: 'rival', kind: 'publishable' })).key;
  return svc;
}
afterEach(async () => {
  await svc?.stop();
  svc = undefined;
});

/** `n` POSTs whose bodies never finish, alternating between `keyList`'s keys. */
function holdWith(s: TestService, n: number, keyList: string[]) {
  return Array.from({ length: n }, (_, i) =>
    slowPost(s.url, '/payment-intent', [`Authorization: Bearer ${keyList[i % keyList.length]!}`]),
  );
}

const shopRead = (s: TestService) =>
  getJson(`${s.url}/refund-status/order-1`, { authorization: `Bearer ${keys.shop!}` });

describe("one owner's requests and another's places, MAX_CONCURRENT_REQUESTS_PER_OWNER set", () => {
  it("another owner's slow request bodies do not take every place from shop", async () => {
    const s = await start({ MAX_CONCURRENT_REQUESTS_PER_OWNER: String(PER_OWNER) });
    // Two of rival's keys: the share is the owner's, not a key's.
    const held = holdWith(s, 2 * CAP, [keys.rival!, keys.rival2!]);
    try {
      // Rival holds its share; every other request of its is answered at once, 503 with Retry-After.
      const answered = await eventually(
        async () => held.filter((h) => h.answered()),
        (a) => a.length >= 2 * CAP - PER_OWNER,
        10_000,
      );
      expect(answered).toHaveLength(2 * CAP - PER_OWNER);
      for (const h of answered) {
        const head = await h.head;
        expect(head).toMatch(/^HTTP\/1\.1 503 /);
        expect(head).toMatch(/^retry-after: 1\r?$/im);
        expect(head).toMatch(/^content-type: application\/problem\+json/im);
      }
      // 404: shop has no such refund. Not 503 overloaded.
      const served = await shopRead(s);
      expect(served.json.code).not.toBe('overloaded');
      expect(served.status).toBe(404);
      // Shop's own slow requests get their share too (4 of the 6 places are then held), and once they hold it shop's
      // next request is refused, as rival's were.
      const shopHeld = holdWith(s, PER_OWNER, [keys.shop!]);
      try {
        const refused = await eventually(
          () => shopRead(s),
          (r) => r.status === 503,
          10_000,
        );
        expect(refused.json).toMatchObject({ code: 'overloaded', retry_after: 1 });
        expect(refused.json.detail).toContain("owner's API keys");
        expect(refused.headers.get('retry-after')).toBe('1');
      } finally {
        for (const h of shopHeld) h.close();
      }
    } finally {
      for (const h of held) h.close();
    }
  });

  it("an owner's publishable key has a share of its own, apart from its secret keys'", async () => {
    const s = await start({ MAX_CONCURRENT_REQUESTS_PER_OWNER: '1' });
    const held = holdWith(s, CAP, [keys.rivalBrowser!]);
    try {
      const answered = await eventually(
        async () => held.filter((h) => h.answered()),
        (a) => a.length >= CAP - 1,
        10_000,
      );
      expect(answered).toHaveLength(CAP - 1);
      for (const h of answered) expect(await h.head).toMatch(/^HTTP\/1\.1 503 /);
      // Rival's back end still has its own place, and shop its own.
      const rivalServed = await getJson(`${s.url}/refund-status/order-1`, {
        authorization: `Bearer ${keys.rival!}`,
      });
      expect(rivalServed.status).toBe(404);
      expect((await shopRead(s)).status).toBe(404);
    } finally {
      for (const h of held) h.close();
    }
  });
});

describe('MAX_CONCURRENT_REQUESTS_PER_OWNER unset (the default)', () => {
  it('one owner may hold every place, as a single-owner service needs', async () => {
    const s = await start();
    const held = holdWith(s, 2 * CAP, [keys.rival!]);
    try {
      const answered = await eventually(
        async () => held.filter((h) => h.answered()),
        (a) => a.length >= CAP,
        10_000,
      );
      // Rival was let in CAP times: no share of its own held it back.
      expect(answered).toHaveLength(CAP);
      const refused = await shopRead(s);
      expect(refused.status).toBe(503);
      expect(refused.json).toMatchObject({ code: 'overloaded' });
      expect(refused.json.detail).toContain('The service is at its limit');
    } finally {
      for (const h of held) h.close();
    }
  });
});
