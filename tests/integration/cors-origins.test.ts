/**
 * CORS as a shop's page meets it: the origins in CORS_ORIGINS taken as the origins they name, as a browser
 * writes them in `Origin`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { postJson, preflight } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

describe('CORS_ORIGINS written otherwise than a browser writes its Origin', () => {
  let svc: TestService;
  let publishable: string;

  beforeAll(async () => {
    // The host in capitals, and the scheme's default port: the same origin as https://shop.example.com (RFC 6454),
    // which the service already takes as the shop's for a publishable key's success_url and cancel_url.
    svc = await startTestService('sqlite', {
      API_AUTH: 'on',
      CORS_ORIGINS: 'https://Shop.Example.com:443,http://localhost:8080',
    });
    publishable = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'publishable' })).key;
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it("lets the shop's page call: its preflight and its request are allowed", async () => {
    // A browser sends the serialized origin: lower case, without the scheme's default port.
    const origin = 'https://shop.example.com';
    const pre = await preflight(`${svc.url}/create-checkout-session`, origin);
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(origin);

    const created = await postJson(
      `${svc.url}/create-checkout-session`,
      {
        line_items: [
          { price_data: { currency: 'sgd', product_data: { name: 'Mug' }, unit_amount: 2500 }, quantity: 1 },
        ],
        success_url: 'https://shop.example.com/thanks?session_id={CHECKOUT_SESSION_ID}',
        cancel_url: 'https://shop.example.com/cart',
      },
      { origin, authorization: `Bearer ${publishable}` },
    );
    expect(created.status).toBe(200);
    expect(created.headers.get('access-control-allow-origin')).toBe(origin);
  });

  it('still allows an origin listed as browsers write it, and no other', async () => {
    const listed = await preflight(`${svc.url}/create-checkout-session`, 'http://localhost:8080');
    expect(listed.status).toBe(204);
    expect(listed.headers.get('access-control-allow-origin')).toBe('http://localhost:8080');
    for (const origin of [
      'https://shop.example.com:8443',
      'http://shop.example.com',
      'https://example.com',
    ]) {
      const other = await preflight(`${svc.url}/create-checkout-session`, origin);
      expect(other.status, origin).toBe(403);
      expect(other.headers.get('access-control-allow-origin'), origin).toBeNull();
    }
  });
});

describe('CORS_ORIGINS and OWNER_ORIGINS with the scheme in capitals', () => {
  let svc: TestService;

  beforeAll(async () => {
    // A URL's scheme and host are case-insensitive (RFC 3986 3.1, 3.2.2): HTTPS://Shop.Example.com is the origin
    // https://shop.example.com. CORS_ORIGINS took only a lower-case scheme, and the service refused to start.
    svc = await startTestService('sqlite', {
      API_AUTH: 'on',
      CORS_ORIGINS: 'HTTPS://Shop.Example.com',
      OWNER_ORIGINS: 'partner=HTTP://Partner.Example.NET:8080',
    });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it("allows the browser's Origin of each, and no other", async () => {
    for (const origin of ['https://shop.example.com', 'http://partner.example.net:8080']) {
      const pre = await preflight(`${svc.url}/create-checkout-session`, origin);
      expect(pre.status, origin).toBe(204);
      expect(pre.headers.get('access-control-allow-origin'), origin).toBe(origin);
    }
    for (const origin of ['http://shop.example.com', 'https://partner.example.net:8080']) {
      const other = await preflight(`${svc.url}/create-checkout-session`, origin);
      expect(other.status, origin).toBe(403);
      expect(other.headers.get('access-control-allow-origin'), origin).toBeNull();
    }
  });
});
