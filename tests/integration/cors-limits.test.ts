/**
 * CORS as a shop's page meets it: every answer a page of a listed origin gets carries CORS headers, whoever gives
 * it (the limits before the validator included), so the page shows the service's problem rather than a network
 * error; and its preflights are answered whatever the limits say.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { postJson, preflight } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

describe("a listed origin's page over the limit of failed authentication", () => {
  let svc: TestService;
  let good: string;
  const origin = 'https://shop.example.com';

  beforeAll(async () => {
    svc = await startTestService('sqlite', {
      API_AUTH: 'on',
      CORS_ORIGINS: origin,
      AUTH_FAILURES_PER_MINUTE: '2',
    });
    good = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'publishable' })).key;
    // The key works, and the process has seen it authenticate (so the limit lets it through, see README).
    const ok = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 700, currency: 'usd' },
      { origin, authorization: `Bearer ${good}` },
    );
    expect(ok.status).toBe(200);
    // Another client behind the same address tries keys until the address is over its limit.
    for (let i = 0; i < 2; i++) {
      const bad = await postJson(
        `${svc.url}/payment-intent`,
        { amount: 700, currency: 'usd' },
        { authorization: `Bearer ppk_${'x'.repeat(40)}${i}` },
      );
      expect(bad.status).toBe(401);
    }
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('still answers the preflight, so a page with a working key can go on paying', async () => {
    // A preflight never carries a key, so the limit could not tell it from a client trying keys: refused 429
    // without CORS headers, the browser failed the request of every customer behind that address.
    const pre = await preflight(`${svc.url}/payment-intent`, origin);
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(origin);

    const paid = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 700, currency: 'usd' },
      { origin, authorization: `Bearer ${good}` },
    );
    expect(paid.status).toBe(200);
  });

  it("lets the page read the limit's 429 and its Retry-After", async () => {
    const refused = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 700, currency: 'usd' },
      { origin, authorization: `Bearer ppk_${'y'.repeat(41)}` },
    );
    expect(refused.status).toBe(429);
    expect(refused.json).toMatchObject({ code: 'rate_limited' });
    // Without Access-Control-Allow-Origin the browser hands the page a network error instead of this answer.
    expect(refused.headers.get('access-control-allow-origin')).toBe(origin);
    const exposed = (refused.headers.get('access-control-expose-headers') ?? '').toLowerCase();
    expect(exposed.split(/\s*,\s*/)).toContain('retry-after');
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
  });
});
