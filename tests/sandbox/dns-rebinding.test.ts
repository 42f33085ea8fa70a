/**
 * The sandbox on a loopback port answers only requests naming a loopback host: a page whose own name resolves to
 * 127.0.0.1 (DNS rebinding) could otherwise call it as same-origin: pay checkout sessions on the hosted page, read
 * the captured requests (client secrets, e-mail addresses) and, on the standalone sandbox, which takes any
 * sk_test_ key, make and confirm payment intents.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { payOnHostedPage, requestAs } from '../helpers/http.js';
import { startSandbox, stripeFor, TEST_KEY, type Sandbox } from './helpers/fixtures.js';

const form = { 'content-type': 'application/x-www-form-urlencoded' };
const CONFIRMED_PAYMENT =
  'amount=2000&currency=usd&payment_method=pm_card_visa&confirm=true' +
  '&automatic_payment_methods[enabled]=true&automatic_payment_methods[allow_redirects]=never';

let sandbox: Sandbox | undefined;
afterEach(async () => {
  await sandbox?.close();
  sandbox = undefined;
});

async function openSession(s: Sandbox): Promise<{ id: string; url: string }> {
  const session = await stripeFor(s).checkout.sessions.create({
    mode: 'payment',
    line_items: [
      { price_data: { currency: 'usd', product_data: { name: 'T' }, unit_amount: 500 }, quantity: 1 },
    ],
    success_url: 'http://127.0.0.1:5000/demo/success.html?session_id={CHECKOUT_SESSION_ID}',
    cancel_url: 'http://127.0.0.1:5000/demo/',
  });
  return { id: session.id, url: session.url! };
}

describe('sandbox listening on 127.0.0.1', () => {
  it('refuses the API under another name with 421: no payment intent is made', async () => {
    sandbox = await startSandbox();
    const res = await requestAs(`${sandbox.url}/v1/payment_intents`, `evil.example:${sandbox.port}`, {
      method: 'POST',
      headers: { ...form, authorization: `Bearer ${TEST_KEY}` },
      body: CONFIRMED_PAYMENT,
    });
    expect(res.status).toBe(421);
    const body = JSON.parse(res.text) as { error: { type: string; message: string } };
    expect(body.error.type).toBe('invalid_request_error');
    expect(body.error.message).toContain('"evil.example:');
    expect(body.error.message).toContain('SANDBOX_HOST');
    // The service's ALLOWED_HOSTS is not the sandbox's: it has no such setting.
    expect(body.error.message).not.toContain('ALLOWED_HOSTS');
    expect(sandbox.stats().paymentIntents).toBe(0);
  });

  it('refuses the hosted checkout page and the control API under another name; the session stays unpaid', async () => {
    sandbox = await startSandbox();
    const session = await openSession(sandbox);
    const evil = `evil.example:${sandbox.port}`;
    expect((await requestAs(session.url, evil)).status).toBe(421);
    const pay = await requestAs(session.url, evil, {
      method: 'POST',
      headers: form,
      body: 'payment_method=pm_card_visa&email=buyer%40example.com',
    });
    expect(pay.status).toBe(421);
    // An older browser sends neither Origin nor Sec-Fetch-Site on a same-origin GET.
    expect((await requestAs(`${sandbox.url}/_sandbox/requests`, evil)).status).toBe(421);
    expect((await requestAs(`${sandbox.url}/_sandbox/reset`, evil, { method: 'POST' })).status).toBe(421);
    expect((await stripeFor(sandbox).checkout.sessions.retrieve(session.id)).payment_status).toBe('unpaid');

    // The customer's own browser, sent by the shop to the URL the sandbox handed out, pays as before.
    const paid = await payOnHostedPage(session.url);
    expect(paid.status).toBe(303);
    expect(paid.headers.get('location')).toContain(session.id);
    expect((await stripeFor(sandbox).checkout.sessions.retrieve(session.id)).payment_status).toBe('paid');
  });

  it('answers loopback names and the host of its public URL', async () => {
    sandbox = await startSandbox({ publicUrl: 'http://stripe.test:12111' });
    for (const host of [
      `localhost:${sandbox.port}`,
      `127.0.0.1:${sandbox.port}`,
      `[::1]:${sandbox.port}`,
      'checkout.localhost',
      'stripe.test:12111',
    ]) {
      expect([host, (await requestAs(`${sandbox.url}/_sandbox/stats`, host)).status]).toEqual([host, 200]);
    }
  });
});

describe('sandbox listening on every address (docker-compose: the api reaches it as http://sandbox:12111)', () => {
  it('answers any name, as before', async () => {
    sandbox = await startSandbox({ host: '0.0.0.0' });
    const res = await requestAs(`http://127.0.0.1:${sandbox.port}/v1/payment_intents`, 'sandbox:12111', {
      method: 'POST',
      headers: { ...form, authorization: `Bearer ${TEST_KEY}` },
      body: CONFIRMED_PAYMENT,
    });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toMatchObject({ status: 'succeeded' });
  });
});
