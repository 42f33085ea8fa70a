/**
 * What the sandbox answers a browser with: the hosted checkout page's form may post only to the sandbox and lead
 * on only to the session's success_url.
 */
import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, stripeFor, type Sandbox } from './helpers/fixtures.js';

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
