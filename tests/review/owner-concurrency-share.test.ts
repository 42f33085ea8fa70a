/**
 * FOR REVIEW (fails on the current code; no fix committed: it needs a decision, see the tenant audit's report).
 *
 * With API keys on, the owners (tenants) of one service share MAX_CONCURRENT_REQUESTS. Publishable keys hold at most
 * their share (publishable-cap.test.ts), but secret keys have none: requests with one owner's secret key whose bodies
 * come slowly each hold a place until REQUEST_TIMEOUT_MS (the per-key rate limit is applied only after the body is
 * read, so it does not bound them), and with every place held, every other owner's requests are answered
 * 503 `overloaded` for as long as that goes on. One tenant (or whoever holds one of its keys) can take the service
 * away from the others.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { getJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { slowPost } from '../helpers/slow-post.js';

const CAP = 4;
let svc: TestService;
const keys: Record<string, string> = {};

beforeEach(async () => {
  svc = await startTestService('sqlite', {
    API_AUTH: 'on',
    MAX_CONCURRENT_REQUESTS: String(CAP),
    // Long enough that no held request is answered 408 (freeing its place) while the test runs.
    REQUEST_TIMEOUT_MS: '20000',
    LOG_LEVEL: 'warn',
  });
  keys.shop = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' })).key;
  keys.rival = (await createKey(svc.deps.store.apiKeys, { owner: 'rival', kind: 'secret' })).key;
});
afterEach(async () => {
  await svc?.stop();
});

describe("one owner's requests and another's places", () => {
  it("another owner's slow request bodies do not take every place from shop", async () => {
    const held = Array.from({ length: 2 * CAP }, () =>
      slowPost(svc.url, '/payment-intent', [`Authorization: Bearer ${keys.rival!}`]),
    );
    try {
      // However many of them the service let in, those it did not are answered at once.
      await eventually(
        async () => held.filter((h) => h.answered()).length,
        (n) => n >= CAP,
        10_000,
      );
      const served = await getJson(`${svc.url}/refund-status/order-1`, {
        authorization: `Bearer ${keys.shop!}`,
      });
      // 404: shop has no such refund. Not 503 overloaded.
      expect(served.json.code).not.toBe('overloaded');
      expect(served.status).toBe(404);
    } finally {
      for (const h of held) h.close();
    }
  });
});
