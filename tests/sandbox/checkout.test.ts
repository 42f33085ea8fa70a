import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, startSandbox, stripeFor, type Sandbox } from './helpers/fixtures.js';

function alertText(html: string): string | undefined {
  return /<p role="alert" id="error">(.*?)<\/p>/.exec(html)?.[1];
}

async function pay(url: string, fields: Record<string, string>): Promise<Response> {
  return fetch(url, { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' });
}

/**
 * A Pay the page refuses: 303 to the page itself (Post/Redirect/Get), whose GET shows why. Answers that GET, its
 * `url` the page's address with the attempt's number.
 */
async function payRefused(url: string, fields: Record<string, string>): Promise<Response> {
  const res = await pay(url, fields);
  expect(res.status).toBe(303);
  const location = new URL(res.headers.get('location') ?? '', url);
  expect(`${location.origin}${location.pathname}`).toBe(url);
  expect(location.search).toMatch(/^\?attempt=\d+$/);
  return fetch(location, { redirect: 'manual' });
}

describe('Checkout Sessions and the hosted page', () => {
  let sandbox: Sandbox;
  let stripe: Stripe;

  const sessionParams = (
    extra: Partial<Stripe.Checkout.SessionCreateParams> = {},
  ): Stripe.Checkout.SessionCreateParams => ({
    mode: 'payment',
    success_url: 'https://shop.example/thanks?session={CHECKOUT_SESSION_ID}',
    cancel_url: 'https://shop.example/cart',
    line_items: [
      {
        quantity: 2,
        price_data: {
          currency: 'sgd',
          unit_amount: 1250,
          product_data: { name: 'Green tea <500g>', description: 'Loose leaf' },
        },
      },
      { quantity: 1, price_data: { currency: 'sgd', unit_amount: 800, product_data: { name: 'Cup' } } },
    ],
    ...extra,
  });

  beforeAll(async () => {
    sandbox = await startSandbox();
    stripe = stripeFor(sandbox);
  });
  afterAll(() => sandbox.close());

  it('creates an open, unpaid session with totals, a hosted URL and no PaymentIntent yet', async () => {
    const session = await stripe.checkout.sessions.create(
      sessionParams({
        customer_email: 'ann@example.com',
        metadata: { cart: 'c-1' },
        client_reference_id: 'cart-1',
      }),
    );
    expect(session.id).toMatch(/^cs_test_[A-Za-z0-9]+$/);
    expect(session.object).toBe('checkout.session');
    expect(session.mode).toBe('payment');
    expect(session.status).toBe('open');
    expect(session.payment_status).toBe('unpaid');
    expect(session.amount_subtotal).toBe(3300);
    expect(session.amount_total).toBe(3300);
    expect(session.currency).toBe('sgd');
    expect(session.customer_email).toBe('ann@example.com');
    expect(session.customer_details).toBeNull();
    expect(session.payment_intent).toBeNull();
    expect(session.metadata).toEqual({ cart: 'c-1' });
    expect(session.url).toBe(`${sandbox.url}/checkout/${session.id}`);
    expect(session.expires_at).toBeGreaterThan(session.created);

    const items = await stripe.checkout.sessions.listLineItems(session.id);
    expect(items.data.map((i) => [i.description, i.quantity, i.amount_total])).toEqual([
      ['Green tea <500g>', 2, 2500],
      ['Cup', 1, 800],
    ]);
    const page = await stripe.checkout.sessions.listLineItems(session.id, { limit: 1 });
    expect(page.has_more).toBe(true);
  });

  // API 2026-03-25.dahlia renamed the ui_mode values; the SDK pins a later version, so Stripe refuses the old
  // ones. The sandbox answered `hosted` and took it as a parameter.
  it('speaks the renamed ui_mode values: hosted_page is the default, the pre-2026 names are refused', async () => {
    const plain = await stripe.checkout.sessions.create(sessionParams());
    expect(plain.ui_mode).toBe('hosted_page');
    const named = await stripe.checkout.sessions.create(sessionParams({ ui_mode: 'hosted_page' }));
    expect(named.ui_mode).toBe('hosted_page');
    for (const old of ['hosted', 'embedded', 'custom']) {
      const err = await errorOf(() =>
        stripe.checkout.sessions.create(
          sessionParams({ ui_mode: old as Stripe.Checkout.SessionCreateParams.UiMode }),
        ),
      );
      expect(err.statusCode).toBe(400);
      expect(err.param).toBe('ui_mode');
    }
  });

  it('serves a plain HTML page with items, total, email, test cards, Pay and cancel link', async () => {
    const session = await stripe.checkout.sessions.create(
      sessionParams({ customer_email: 'ann@example.com' }),
    );
    const res = await fetch(session.url as string);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = await res.text();
    expect(html).toContain('Green tea &lt;500g&gt;');
    expect(html).not.toContain('<500g>');
    expect(html).toContain('Loose leaf');
    expect(html).toMatch(/id="total">\$33\.00 SGD</);
    // Stripe asks for the address only when the session has none ("If not provided, customers will be asked to
    // enter their email address": docs.stripe.com/api/checkout/sessions/create#customer_email).
    expect(html).toMatch(/<input type="email" id="email" name="email" value="ann@example.com"[^>]* readonly/);
    expect(html).toContain('<select id="payment_method" name="payment_method">');
    for (const pm of ['pm_card_visa', 'pm_card_chargeDeclined', 'pm_card_refundFail']) {
      expect(html).toContain(`value="${pm}"`);
    }
    expect(html).toContain('<button type="submit" id="pay">');
    expect(html).toContain('href="https://shop.example/cart"');
    expect(html).not.toMatch(/<(script|link|img)\b/);
    expect(alertText(html)).toBeUndefined();

    const missing = await fetch(`${sandbox.url}/checkout/cs_test_nope`);
    expect(missing.status).toBe(404);
  });

  it('pays on the page: 303 to success_url, session complete/paid, PaymentIntent and charge succeeded', async () => {
    const session = await stripe.checkout.sessions.create(
      sessionParams({ payment_intent_data: { metadata: { order: 'o-9' } }, metadata: { cart: 'c-9' } }),
    );
    const res = await pay(session.url as string, {
      email: 'bob@example.com',
      payment_method: 'pm_card_visa',
    });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`https://shop.example/thanks?session=${session.id}`);

    const done = await stripe.checkout.sessions.retrieve(session.id, { expand: ['payment_intent'] });
    expect(done.status).toBe('complete');
    expect(done.payment_status).toBe('paid');
    expect(done.url).toBeNull();
    expect(done.customer_details?.email).toBe('bob@example.com');
    const intent = done.payment_intent as Stripe.PaymentIntent;
    expect(intent.status).toBe('succeeded');
    expect(intent.amount).toBe(3300);
    expect(intent.currency).toBe('sgd');
    expect(intent.metadata).toEqual({ order: 'o-9' });
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    expect(charge.status).toBe('succeeded');
    expect(charge.billing_details.email).toBe('bob@example.com');

    const types = (await stripe.events.list({ limit: 4 })).data.map((e) => e.type);
    expect(types).toEqual([
      'checkout.session.completed',
      'payment_intent.succeeded',
      'charge.succeeded',
      'payment_intent.created',
    ]);

    // Back from the shop's page after paying: the page says it is paid and leads back to that page.
    const again = await (await fetch(session.url as string)).text();
    expect(again).toContain('id="status" data-status="complete"');
    expect(again).toContain(
      `<a id="return" href="https://shop.example/thanks?session=${session.id}">Return to the shop</a>`,
    );
    const payAgain = await pay(session.url as string, {
      email: 'bob@example.com',
      payment_method: 'pm_card_visa',
    });
    expect(payAgain.status).toBe(409);
    expect(
      (await stripe.paymentIntents.list()).data.filter((p) => p.amount === 3300 && p.status === 'succeeded'),
    ).toHaveLength(1);
  });

  it('redirects to a success_url with non-ASCII or control characters, percent-encoded, after one payment', async () => {
    // Valid URLs by the WHATWG parser (and the service's contract), but not as they are in a Location header:
    // writing them raw threw after the charge, answering 500 "Please try again" to a customer already charged.
    const cases: [string, string][] = [
      ['https://shop.example/日本?s={CHECKOUT_SESSION_ID}', 'https://shop.example/%E6%97%A5%E6%9C%AC?s='],
      ['https://shop.example/a\u0001b/{CHECKOUT_SESSION_ID}', 'https://shop.example/a%01b/'],
      ['https://shop.example/x\u007f?s={CHECKOUT_SESSION_ID}', 'https://shop.example/x%7F?s='],
    ];
    for (const [successUrl, prefix] of cases) {
      const session = await stripe.checkout.sessions.create(sessionParams({ success_url: successUrl }));
      const res = await pay(session.url as string, {
        email: 'dan@example.com',
        payment_method: 'pm_card_visa',
      });
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe(`${prefix}${session.id}`);
      expect(await res.text()).toContain(`href="${prefix}${session.id}"`);
      const done = await stripe.checkout.sessions.retrieve(session.id);
      expect(done.payment_status).toBe('paid');
      const charges = await stripe.charges.list({ payment_intent: done.payment_intent as string });
      expect(charges.data).toHaveLength(1);
    }
  });

  it("pays with the session's customer_email whatever address the form sends", async () => {
    const session = await stripe.checkout.sessions.create(
      sessionParams({ customer_email: 'ann@example.com' }),
    );
    const res = await pay(session.url as string, {
      email: 'mallory@example.com',
      payment_method: 'pm_card_visa',
    });
    expect(res.status).toBe(303);
    const done = await stripe.checkout.sessions.retrieve(session.id, { expand: ['payment_intent'] });
    expect(done.customer_details?.email).toBe('ann@example.com');
    const charge = await stripe.charges.retrieve(
      (done.payment_intent as Stripe.PaymentIntent).latest_charge as string,
    );
    expect(charge.billing_details.email).toBe('ann@example.com');
  });

  it('re-renders the page with the decline message and keeps the session open', async () => {
    const session = await stripe.checkout.sessions.create(sessionParams());
    const res = await payRefused(session.url as string, {
      email: 'cat@example.com',
      payment_method: 'pm_card_chargeDeclinedInsufficientFunds',
    });
    expect(res.status).toBe(402);
    const html = await res.text();
    expect(alertText(html)).toBe('Your card has insufficient funds.');
    expect(html).toContain('value="cat@example.com"');
    const still = await stripe.checkout.sessions.retrieve(session.id, { expand: ['payment_intent'] });
    expect(still.status).toBe('open');
    expect(still.payment_status).toBe('unpaid');
    // The session's PaymentIntent is made when the customer confirms (docs.stripe.com/changelog/2022-08-01/
    // deferred-paymentintent-checkout-session), so the session names it from the first attempt, declined or not.
    const attempt = still.payment_intent as Stripe.PaymentIntent;
    expect(attempt).toMatchObject({ status: 'requires_payment_method', amount: 3300 });
    expect(attempt.last_payment_error?.decline_code).toBe('insufficient_funds');
    const byIntent = await stripe.checkout.sessions.list({ payment_intent: attempt.id });
    expect(byIntent.data.map((s) => s.id)).toEqual([session.id]);

    const badEmail = await payRefused(session.url as string, {
      email: 'nope',
      payment_method: 'pm_card_visa',
    });
    expect(badEmail.status).toBe(400);
    expect(alertText(await badEmail.text())).toBe('Enter a valid email address.');

    const ok = await pay(session.url as string, { email: 'cat@example.com', payment_method: 'pm_card_visa' });
    expect(ok.status).toBe(303);
    const paid = await stripe.checkout.sessions.retrieve(session.id);
    expect(paid.payment_intent).toBe(attempt.id);
    const charges = await stripe.charges.list({ payment_intent: paid.payment_intent as string });
    expect(charges.data.map((c) => c.status)).toEqual(['succeeded', 'failed']);
    // Back (or a reload) to the page that showed the decline reads it again: the paid session's page, no second Pay.
    const again = await fetch(res.url, { redirect: 'manual' });
    expect(again.status).toBe(200);
    const backHtml = await again.text();
    expect(backHtml).toContain('the payment has already been made');
    expect(alertText(backHtml)).toBeUndefined();
  });

  it('keeps naming the declined attempt on a session that expires, its intent canceled', async () => {
    const session = await stripe.checkout.sessions.create(sessionParams());
    const declined = await payRefused(session.url as string, {
      email: 'ann@example.com',
      payment_method: 'pm_card_chargeDeclined',
    });
    expect(declined.status).toBe(402);
    const attempt = (await stripe.checkout.sessions.retrieve(session.id)).payment_intent as string;
    expect(attempt).toMatch(/^pi_/);

    const expired = await stripe.checkout.sessions.expire(session.id);
    expect([expired.status, expired.payment_intent]).toEqual(['expired', attempt]);
    const intent = await stripe.paymentIntents.retrieve(attempt);
    expect([intent.status, intent.cancellation_reason]).toEqual(['canceled', 'abandoned']);
    const event = (await stripe.events.list({ type: 'checkout.session.expired', limit: 1 })).data[0];
    expect((event?.data.object as Stripe.Checkout.Session).payment_intent).toBe(attempt);
  });

  it('refuses to confirm, cancel or re-price the PaymentIntent of a Checkout attempt through the API', async () => {
    // Stripe: "You cannot perform this action on PaymentIntents created by Checkout." Confirming the declined
    // attempt's intent, then paying on the page, charged one intent twice.
    const session = await stripe.checkout.sessions.create(sessionParams());
    const declined = await payRefused(session.url as string, {
      email: 'eve@example.com',
      payment_method: 'pm_card_chargeDeclined',
    });
    expect(declined.status).toBe(402);
    const attempt = (await stripe.paymentIntents.list({ limit: 1 })).data[0]!;
    expect(attempt).toMatchObject({ amount: 3300, status: 'requires_payment_method' });

    for (const call of [
      () => stripe.paymentIntents.confirm(attempt.id, { payment_method: 'pm_card_visa' }),
      () => stripe.paymentIntents.cancel(attempt.id),
      () => stripe.paymentIntents.update(attempt.id, { amount: 100 }),
    ]) {
      const err = await errorOf(call);
      expect(err.statusCode).toBe(400);
      expect(err.type).toBe('StripeInvalidRequestError');
      expect(err.message).toBe('You cannot perform this action on PaymentIntents created by Checkout.');
    }
    // What does not touch the payment may still change.
    const noted = await stripe.paymentIntents.update(attempt.id, { metadata: { note: 'n' } });
    expect(noted.metadata).toEqual({ note: 'n' });

    const paid = await pay(session.url as string, {
      email: 'eve@example.com',
      payment_method: 'pm_card_visa',
    });
    expect(paid.status).toBe(303);
    const intent = await stripe.paymentIntents.retrieve(attempt.id);
    expect(intent).toMatchObject({ status: 'succeeded', amount: 3300, amount_received: 3300 });
    const charges = await stripe.charges.list({ payment_intent: attempt.id });
    expect(charges.data.map((c) => c.status)).toEqual(['succeeded', 'failed']);
  });

  it('expires an open session; the page then shows a message instead of the form', async () => {
    const session = await stripe.checkout.sessions.create(sessionParams());
    const expired = await stripe.checkout.sessions.expire(session.id);
    expect(expired.status).toBe('expired');
    expect(expired.url).toBeNull();
    const html = await (await fetch(session.url as string)).text();
    expect(html).toContain('data-status="expired"');
    expect(html).not.toContain('<form');
    expect(html).toContain('<a id="return" href="https://shop.example/cart">Return to the shop</a>');
    const twice = await errorOf(() => stripe.checkout.sessions.expire(session.id));
    expect(twice.statusCode).toBe(400);
    const event = (await stripe.events.list({ type: 'checkout.session.expired', limit: 1 })).data[0];
    expect((event?.data.object as Stripe.Checkout.Session).id).toBe(session.id);
  });

  it('lists sessions by status and payment_intent', async () => {
    const fresh = await startSandbox();
    try {
      const client = stripeFor(fresh);
      const a = await client.checkout.sessions.create(sessionParams());
      const b = await client.checkout.sessions.create(sessionParams());
      await client.checkout.sessions.expire(a.id);
      await pay(b.url as string, { email: 'd@example.com', payment_method: 'pm_card_amex' });
      const c = await client.checkout.sessions.create(sessionParams());
      const open = await client.checkout.sessions.list({ status: 'open' });
      expect(open.data.map((s) => s.id)).toEqual([c.id]);
      const all = await client.checkout.sessions.list();
      expect(all.data.map((s) => s.id)).toEqual([c.id, b.id, a.id]);
      const paidB = await client.checkout.sessions.retrieve(b.id);
      const byIntent = await client.checkout.sessions.list({
        payment_intent: paidB.payment_intent as string,
      });
      expect(byIntent.data.map((s) => s.id)).toEqual([b.id]);
    } finally {
      await fresh.close();
    }
  });

  it('builds hosted URLs from publicUrl when one is given (for example behind Docker)', async () => {
    const proxied = await startSandbox({ publicUrl: 'http://sandbox.example:9999/' });
    try {
      const session = await stripeFor(proxied).checkout.sessions.create(sessionParams());
      expect(session.url).toBe(`http://sandbox.example:9999/checkout/${session.id}`);
      expect(proxied.url).toBe(`http://127.0.0.1:${proxied.port}`);
    } finally {
      await proxied.close();
    }
  });

  it('validates create parameters like Stripe', async () => {
    const noItems = await errorOf(() =>
      stripe.checkout.sessions.create({ mode: 'payment', success_url: 'https://shop.example/ok' }),
    );
    expect(noItems.code).toBe('parameter_missing');
    expect(noItems.param).toBe('line_items');

    const badUrl = await errorOf(() =>
      stripe.checkout.sessions.create(sessionParams({ success_url: 'not a url' })),
    );
    expect(badUrl.code).toBe('url_invalid');
    expect(badUrl.param).toBe('success_url');

    const noName = await errorOf(() =>
      stripe.checkout.sessions.create(
        sessionParams({
          line_items: [
            {
              quantity: 1,
              price_data: { currency: 'usd', unit_amount: 500 },
            } as Stripe.Checkout.SessionCreateParams.LineItem,
          ],
        }),
      ),
    );
    expect(noName.param).toBe('line_items[0][price_data][product_data]');

    const unknown = await errorOf(() =>
      stripe.checkout.sessions.create(
        sessionParams({
          line_items: [
            {
              quantity: 1,
              colour: 'red',
              price_data: { currency: 'usd', unit_amount: 500, product_data: { name: 'x' } },
            },
          ] as unknown as Stripe.Checkout.SessionCreateParams.LineItem[],
        }),
      ),
    );
    expect(unknown.code).toBe('parameter_unknown');
    expect(unknown.param).toBe('line_items[0][colour]');

    const tooSmall = await errorOf(() =>
      stripe.checkout.sessions.create(
        sessionParams({
          line_items: [
            { quantity: 1, price_data: { currency: 'usd', unit_amount: 10, product_data: { name: 'x' } } },
          ],
        }),
      ),
    );
    expect(tooSmall.code).toBe('amount_too_small');

    const email = await errorOf(() =>
      stripe.checkout.sessions.create(sessionParams({ customer_email: 'no-at-sign' })),
    );
    expect(email.code).toBe('email_invalid');

    const missing = await errorOf(() => stripe.checkout.sessions.retrieve('cs_test_missing'));
    expect(missing.statusCode).toBe(404);
    expect(missing.message).toBe("No such checkout.session: 'cs_test_missing'");
  });
});
