/**
 * A URL's scheme is case-insensitive (RFC 3986 3.1), and Stripe takes `HTTPS://shop.example.com/ok` as a checkout
 * session's `success_url`. The contract's pattern took only a lower-case `http`/`https`, so such a URL was refused
 * with 400. It now takes the scheme in any case; anything but http(s) (`javascript:`, `data:`, `ftp:`) is still
 * refused in any case, and a publishable key still sends customers back only to the shop's origins, which an
 * upper-case scheme does not get around.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
const keys: Record<string, string> = {};

beforeAll(async () => {
  svc = await startTestService('sqlite', {
    API_AUTH: 'on',
    CORS_ORIGINS: 'https://shop.example.com',
    LOG_LEVEL: 'silent',
  });
  const repo = svc.deps.store.apiKeys;
  keys.secret = (await createKey(repo, { owner: 'shop', kind: 'secret' })).key;
  keys.browser = (await createKey(repo, { owner: 'shop', kind: 'publishable' })).key;
});
afterAll(async () => {
  await svc?.stop();
});

const session = (success_url: string, cancel_url: string, key: string) =>
  postJson(
    `${svc.url}/create-checkout-session`,
    {
      line_items: [
        { price_data: { currency: 'usd', product_data: { name: 'Lamp' }, unit_amount: 500 }, quantity: 1 },
      ],
      success_url,
      cancel_url,
    },
    { authorization: `Bearer ${key}` },
  );

describe("a checkout session's success_url and cancel_url take the scheme in any case", () => {
  it('takes HTTPS:// and Http://, and Stripe is given the URLs as sent', async () => {
    const success = 'HTTPS://shop.example.com/ok?session_id={CHECKOUT_SESSION_ID}';
    const cancel = 'Http://shop.example.com/cart';
    const made = await session(success, cancel, keys.secret!);
    expect(made.status, made.text).toBe(200);
    const atStripe = await svc.deps.stripe.checkout.sessions.retrieve(String(made.json.id));
    expect(atStripe).toMatchObject({ success_url: success, cancel_url: cancel });
  });

  it("with a publishable key: the shop's origin in any case is the shop's, another site is still refused", async () => {
    const shop = await session('HTTPS://shop.example.com/ok', 'hTTps://shop.example.com/cart', keys.browser!);
    expect(shop.status, shop.text).toBe(200);

    const evil = await session('HTTPS://evil.example.net/ok', 'https://shop.example.com/cart', keys.browser!);
    expect(evil.status, evil.text).toBe(400);
    expect(evil.json).toMatchObject({ code: 'redirect_not_allowed', param: 'success_url' });
  });

  it.each([
    'JAVASCRIPT:alert(1)//https://shop.example.com/',
    'javascript://shop.example.com/%0aalert(1)',
    'Data:text/html,<script>alert(1)</script>',
    'FTP://shop.example.com/ok',
    'HTTPS:/shop.example.com/ok',
    'HTTPX://shop.example.com/ok',
  ])('still refuses %s', async (url) => {
    const res = await session(url, 'https://shop.example.com/cart', keys.secret!);
    expect(res.status, res.text).toBe(400);
    expect((res.json.errors as { path: string }[]).map((e) => e.path)).toContain('/body/success_url');
  });
});
