/**
 * FOR REVIEW (fails on the current code; no fix committed: it needs origins per owner, a setting, see the tenant
 * audit's report).
 *
 * A checkout session created with a publishable key must send the customer back to one of the shop's origins, so
 * that "a genuine checkout page of yours cannot be made to hand your customers over to another site" (README, API
 * keys). The origins are CORS_ORIGINS, one list for every owner: with two shops on one service, both their origins
 * are listed, and anyone who reads shop's publishable key out of shop's pages can make a genuine checkout of shop's
 * that sends shop's customers, once they have paid, on to rival's site (or rival's own key's sessions to shop's).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let shopBrowser: string;

beforeAll(async () => {
  svc = await startTestService('sqlite', {
    API_AUTH: 'on',
    CORS_ORIGINS: 'https://shop.example.com,https://rival.example.org',
  });
  shopBrowser = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'publishable' })).key;
  // The other shop on the service, whose pages are on https://rival.example.org.
  await createKey(svc.deps.store.apiKeys, { owner: 'rival', kind: 'publishable' });
});
afterAll(async () => {
  await svc?.stop();
});

describe("a publishable key's checkout redirects, with two owners' origins listed", () => {
  it("shop's publishable key cannot send shop's customers on to rival's origin", async () => {
    const res = await postJson(
      `${svc.url}/create-checkout-session`,
      {
        line_items: [
          { price_data: { currency: 'usd', product_data: { name: 'T' }, unit_amount: 500 }, quantity: 1 },
        ],
        success_url: 'https://rival.example.org/thanks?session_id={CHECKOUT_SESSION_ID}',
        cancel_url: 'https://shop.example.com/cart',
      },
      { authorization: `Bearer ${shopBrowser}` },
    );
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ code: 'redirect_not_allowed', param: 'success_url' });
  });
});
