/**
 * OWNER_ORIGINS: each owner's browser origins, for a service that holds several shops.
 *
 * A checkout session created with a publishable key must send the customer back to one of the shop's origins, so
 * that "a genuine checkout page of yours cannot be made to hand your customers over to another site" (README, API
 * keys). With CORS_ORIGINS alone the origins are one list for every owner: with two shops on one service both their
 * origins were listed, and anyone who read shop's publishable key out of shop's pages could make a genuine checkout
 * of shop's that sent shop's customers, once they had paid, on to rival's site (200). With OWNER_ORIGINS a
 * publishable key's checkout returns only to its own owner's origins (an owner not listed: none), and every listed
 * origin may call from browsers (CORS).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { postJson, preflight as preflightTo } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
const keys: Record<string, string> = {};

beforeAll(async () => {
  svc = await startTestService('sqlite', {
    API_AUTH: 'on',
    // As a service holding two shops was set up before OWNER_ORIGINS: both shops' origins (and a partner's, whose
    // pages every owner's keys may be called from), which every publishable key's checkout could return to.
    CORS_ORIGINS: 'https://shop.example.com,https://rival.example.org,https://partner.example.net',
    OWNER_ORIGINS:
      'shop=https://shop.example.com,https://www.shop.example.com rival=https://rival.example.org',
  });
  const store = svc.deps.store.apiKeys;
  keys.shopBrowser = (await createKey(store, { owner: 'shop', kind: 'publishable' })).key;
  keys.shopServer = (await createKey(store, { owner: 'shop', kind: 'secret' })).key;
  // The other shop on the service, whose pages are on https://rival.example.org.
  keys.rivalBrowser = (await createKey(store, { owner: 'rival', kind: 'publishable' })).key;
  // A third owner OWNER_ORIGINS does not list.
  keys.otherBrowser = (await createKey(store, { owner: 'other', kind: 'publishable' })).key;
});
afterAll(async () => {
  await svc?.stop();
});

const session = (key: string, success: string, cancel: string) =>
  postJson(
    `${svc.url}/create-checkout-session`,
    {
      line_items: [
        { price_data: { currency: 'usd', product_data: { name: 'T' }, unit_amount: 500 }, quantity: 1 },
      ],
      success_url: success,
      cancel_url: cancel,
    },
    { authorization: `Bearer ${key}` },
  );

describe("a publishable key's checkout redirects, with two owners' origins listed", () => {
  it("shop's publishable key cannot send shop's customers on to rival's origin", async () => {
    const res = await session(
      keys.shopBrowser!,
      'https://rival.example.org/thanks?session_id={CHECKOUT_SESSION_ID}',
      'https://shop.example.com/cart',
    );
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ code: 'redirect_not_allowed', param: 'success_url' });
    expect(res.json.detail).toContain('OWNER_ORIGINS');
  });

  it("nor rival's key to shop's, nor either to CORS_ORIGINS' shared origin", async () => {
    const toShop = await session(
      keys.rivalBrowser!,
      'https://rival.example.org/ok',
      'https://shop.example.com/x',
    );
    expect(toShop.status).toBe(400);
    expect(toShop.json).toMatchObject({ code: 'redirect_not_allowed', param: 'cancel_url' });
    const toPartner = await session(
      keys.shopBrowser!,
      'https://partner.example.net/ok',
      'https://partner.example.net/no',
    );
    expect(toPartner.status).toBe(400);
    expect(toPartner.json.errors).toEqual([
      expect.objectContaining({ path: '/body/success_url' }),
      expect.objectContaining({ path: '/body/cancel_url' }),
    ]);
  });

  it("each key returns to its own owner's origins, any of them", async () => {
    const shop = await session(
      keys.shopBrowser!,
      'https://www.shop.example.com/thanks?session_id={CHECKOUT_SESSION_ID}',
      'https://shop.example.com/cart',
    );
    expect(shop.status).toBe(200);
    expect(shop.json.id).toMatch(/^cs_/);
    // As browsers write origins: the host's case and the default port are not the origin's.
    const rival = await session(
      keys.rivalBrowser!,
      'https://RIVAL.example.org:443/ok',
      'https://rival.example.org/cart',
    );
    expect(rival.status).toBe(200);
  });

  it('an owner OWNER_ORIGINS does not list has no origin to return to', async () => {
    for (const origin of ['https://shop.example.com', 'https://partner.example.net']) {
      const res = await session(keys.otherBrowser!, `${origin}/ok`, `${origin}/no`);
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ code: 'redirect_not_allowed', param: 'success_url' });
      expect(res.json.detail).toContain('lists none');
    }
  });

  it("a secret key (the shop's back end) still sends its customers wherever it likes", async () => {
    const res = await session(
      keys.shopServer!,
      'https://rival.example.org/ok',
      'https://elsewhere.example/no',
    );
    expect(res.status).toBe(200);
  });
});

describe('CORS with OWNER_ORIGINS', () => {
  const preflight = (origin: string) => preflightTo(`${svc.url}/create-checkout-session`, origin);

  it('allows every origin it lists, and those of CORS_ORIGINS, and no other', async () => {
    for (const origin of [
      'https://shop.example.com',
      'https://www.shop.example.com',
      'https://rival.example.org',
      'https://partner.example.net',
    ]) {
      const ok = await preflight(origin);
      expect(ok.status, origin).toBe(204);
      expect(ok.headers.get('access-control-allow-origin')).toBe(origin);
    }
    const evil = await preflight('https://evil.example.net');
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
  });

  it("a page of an owner's origin reads the answer to its own key's request", async () => {
    const res = await fetch(`${svc.url}/payment-intent`, {
      method: 'POST',
      headers: {
        origin: 'https://rival.example.org',
        authorization: `Bearer ${keys.rivalBrowser!}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ amount: 1000, currency: 'usd' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://rival.example.org');
  });
});

describe('without OWNER_ORIGINS', () => {
  let single: TestService;
  let browser: string;
  beforeAll(async () => {
    single = await startTestService('sqlite', {
      API_AUTH: 'on',
      CORS_ORIGINS: 'https://shop.example.com,https://www.shop.example.com',
    });
    browser = (await createKey(single.deps.store.apiKeys, { owner: 'shop', kind: 'publishable' })).key;
  });
  afterAll(async () => {
    await single?.stop();
  });

  it("every publishable key's checkout may return to any of CORS_ORIGINS, as before", async () => {
    const res = await postJson(
      `${single.url}/create-checkout-session`,
      {
        line_items: [
          { price_data: { currency: 'usd', product_data: { name: 'T' }, unit_amount: 500 }, quantity: 1 },
        ],
        success_url: 'https://www.shop.example.com/ok',
        cancel_url: 'https://shop.example.com/no',
      },
      { authorization: `Bearer ${browser}` },
    );
    expect(res.status).toBe(200);
    const elsewhere = await postJson(
      `${single.url}/create-checkout-session`,
      {
        line_items: [
          { price_data: { currency: 'usd', product_data: { name: 'T' }, unit_amount: 500 }, quantity: 1 },
        ],
        success_url: 'https://rival.example.org/ok',
        cancel_url: 'https://shop.example.com/no',
      },
      { authorization: `Bearer ${browser}` },
    );
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.json.detail).toContain('CORS_ORIGINS');
  });
});
