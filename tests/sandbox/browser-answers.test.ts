/**
 * What the sandbox answers a browser with: every answer says it is what its Content-Type says (nosniff), the hosted
 * checkout page's form may post only to the sandbox and lead on only to the session's success_url, and a form
 * another site's page posts to the checkout is refused.
 */
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendRaw } from '../helpers/raw-http.js';
import { startSandbox, stripeFor, TEST_KEY, type Sandbox } from './helpers/fixtures.js';

let sandbox: Sandbox;
let stripe: Stripe;

beforeAll(async () => {
  sandbox = await startSandbox();
  stripe = stripeFor(sandbox);
});
afterAll(() => sandbox.close());

const session = (success_url = 'https://shop.example/thanks?session={CHECKOUT_SESSION_ID}') =>
  stripe.checkout.sessions.create({
    mode: 'payment',
    success_url,
    cancel_url: 'https://shop.example/cart',
    line_items: [
      { quantity: 1, price_data: { currency: 'sgd', unit_amount: 800, product_data: { name: 'Cup' } } },
    ],
  });

const pay = (url: string, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers,
    body: new URLSearchParams({ email: 'ann@example.com', payment_method: 'pm_card_visa' }),
    redirect: 'manual',
  });

describe('X-Content-Type-Options: nosniff', () => {
  it('is on every answer: the API, its errors, the control API, the checkout page, refusals', async () => {
    const open = await session();
    const auth = { authorization: `Bearer ${TEST_KEY}` };
    const answers: [string, Response][] = [
      ['API 200', await fetch(`${sandbox.url}/v1/checkout/sessions/${open.id}`, { headers: auth })],
      ['API 401', await fetch(`${sandbox.url}/v1/checkout/sessions/${open.id}`)],
      ['API 404', await fetch(`${sandbox.url}/v1/nothing`, { headers: auth })],
      ['control 200', await fetch(`${sandbox.url}/_sandbox/stats`)],
      ['control 404', await fetch(`${sandbox.url}/_sandbox/nothing`)],
      [
        'control 403',
        await fetch(`${sandbox.url}/_sandbox/stats`, { headers: { origin: 'https://a.example' } }),
      ],
      ['checkout page', await fetch(open.url!)],
      ['checkout 405', await fetch(open.url!, { method: 'PUT' })],
    ];
    for (const [what, res] of answers) {
      expect(res.headers.get('x-content-type-options'), `${what} (${res.status})`).toBe('nosniff');
    }
    expect(answers.map(([, res]) => res.status)).toEqual([200, 401, 404, 200, 404, 403, 200, 405]);

    // fetch sends its own Host: a name other than loopback's (DNS rebinding) is refused before anything else.
    const misdirected = await sendRaw(
      sandbox.url,
      'GET /v1/charges HTTP/1.1\r\nHost: rebound.example\r\nConnection: close\r\n\r\n',
    );
    expect(misdirected).toMatch(/^HTTP\/1\.1 421 /);
    expect(misdirected).toMatch(/^X-Content-Type-Options: nosniff\r$/im);
    const unparsable = await sendRaw(sandbox.url, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\r\n\r\n');
    expect(unparsable).toMatch(/^HTTP\/1\.1 400 /);
    expect(unparsable).toMatch(/^X-Content-Type-Options: nosniff\r$/im);
  });
});

describe("the checkout page's Content-Security-Policy", () => {
  const formAction = async (success_url?: string) => {
    const open = await session(success_url);
    const csp = (await fetch(open.url!)).headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/(^|; )base-uri 'none'(;|$)/);
    return /(?:^|; )form-action ([^;]*)/.exec(csp)?.[1];
  };

  it("lets the form post to the sandbox only, and lead on to the success_url's origin", async () => {
    expect(await formAction()).toBe("'self' https://shop.example");
    expect(await formAction('HTTP://Shop.Example:8080/ok')).toBe("'self' http://shop.example:8080");
  });

  it("gives a success_url whose host a policy cannot name by its scheme, and nothing of the host's", async () => {
    // A host may hold `;` and `'`, which would end the directive and start one of the URL's choosing.
    expect(await formAction("https://a;script-src'unsafe-inline'/ok")).toBe("'self' https:");
    expect(await formAction('http://[::1]:8080/ok')).toBe("'self' http:");
  });
});

describe('a form posted to the checkout page from another origin', () => {
  it('is refused with a page that says so, and pays nothing', async () => {
    const cases: Record<string, string>[] = [
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { origin: `http://127.0.0.1:${sandbox.port + 1}` },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { 'sec-fetch-site': 'same-site', origin: sandbox.url },
    ];
    for (const headers of cases) {
      const open = await session();
      const res = await pay(open.url!, headers);
      const what = JSON.stringify(headers);
      expect(res.status, what).toBe(403);
      expect(res.headers.get('content-type'), what).toBe('text/html; charset=utf-8');
      expect(res.headers.get('location'), what).toBeNull();
      expect(await res.text(), what).toContain(
        'This payment form was sent from another site, so nothing was charged',
      );
      const after = await stripe.checkout.sessions.retrieve(open.id);
      expect([after.status, after.payment_status, after.payment_intent], what).toEqual([
        'open',
        'unpaid',
        null,
      ]);
    }
  });

  it('is answered when it comes from the page itself, or from no page (test code, curl)', async () => {
    const cases: Record<string, string>[] = [
      {},
      { origin: sandbox.url },
      { 'sec-fetch-site': 'same-origin', origin: sandbox.url },
      // A proxy in front that rewrites Host: the browser's own verdict stands.
      { 'sec-fetch-site': 'same-origin', origin: 'https://pay.example' },
    ];
    for (const headers of cases) {
      const open = await session();
      const res = await pay(open.url!, headers);
      expect(res.status, JSON.stringify(headers)).toBe(303);
      expect((await stripe.checkout.sessions.retrieve(open.id)).payment_status).toBe('paid');
    }
  });
});
