/**
 * Stripe names a Checkout Session's payment intent from the first confirmation attempt (the first Pay on the hosted
 * page), not once paid: after a declined Pay the session is still `open` and `unpaid` but names an intent in
 * `requires_payment_method`, and once the session expires it names that intent, canceled. What the service records
 * from such a session (GET /checkout-session, or its events) must say so, not take the intent for one that was paid,
 * nor for one still payable once the session has expired.
 *
 * A Stripe of the test's own that sends the service no webhooks: what the ledger knows here comes from
 * GET /checkout-session alone, as it does whenever the intent's own events are late.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { getJson, payOnHostedPage, postJson } from '../helpers/http.js';
import {
  startSharedStripe,
  startTestService,
  type SharedStripe,
  type TestService,
} from '../helpers/service.js';

let stripe: SharedStripe;
let svc: TestService;
let auth: Record<string, string>;
beforeAll(async () => {
  stripe = await startSharedStripe();
  svc = await startTestService('sqlite', { API_AUTH: 'on', STRIPE_MAX_NETWORK_RETRIES: '0', ...stripe.env });
  const { key } = await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' });
  auth = { authorization: `Bearer ${key}` };
});
afterAll(async () => {
  await svc?.stop();
  await stripe?.close();
});

const checkout = (order: string) => ({
  line_items: [
    { price_data: { currency: 'usd', product_data: { name: 'Kettle' }, unit_amount: 3900 }, quantity: 1 },
  ],
  success_url: 'https://shop.example/ok',
  cancel_url: 'https://shop.example/cancel',
  metadata: { order },
});

/** A session made through the service and a declined Pay on its hosted page: its id and the intent it names. */
async function declinedSession(order: string): Promise<{ id: string; url: string; pi: string }> {
  const made = await postJson(`${svc.url}/create-checkout-session`, checkout(order), auth);
  expect(made.status).toBe(200);
  const { id, url } = made.json as { id: string; url: string };
  // Refused, the page answers 303 to itself (Post/Redirect/Get), which shows the decline with its 402.
  const declined = await payOnHostedPage(url, 'pm_card_chargeDeclined');
  expect(declined.status).toBe(303);
  expect((await fetch(new URL(declined.headers.get('location')!, url))).status).toBe(402);
  const session = await getJson(`${svc.url}/checkout-session?session_id=${id}`, auth);
  expect(session.status).toBe(200);
  expect(session.json).toMatchObject({ status: 'open', payment_status: 'unpaid' });
  const pi = session.json.payment_intent;
  expect(pi).toMatch(/^pi_/);
  return { id, url, pi: pi as string };
}

describe('a checkout session whose first Pay was declined', () => {
  it('names an intent the ledger records as unpaid, which cannot be refunded, and is paid by the next Pay', async () => {
    const { id, url, pi } = await declinedSession('declined-then-paid');
    expect(await svc.deps.store.payments.get(pi)).toMatchObject({ status: 'requires_payment_method' });
    const refund = await postJson(
      `${svc.url}/refund`,
      { payment_intent_id: pi, request_id: 'too-early' },
      auth,
    );
    expect(refund.status).toBe(409);
    expect(refund.json.code).toBe('payment_not_refundable');

    expect((await payOnHostedPage(url)).status).toBe(303);
    const paid = await getJson(`${svc.url}/checkout-session?session_id=${id}`, auth);
    expect(paid.json).toMatchObject({ status: 'complete', payment_status: 'paid', payment_intent: pi });
    expect(await svc.deps.store.payments.get(pi)).toMatchObject({ status: 'succeeded', amount: 3900 });
    const refunded = await postJson(
      `${svc.url}/refund`,
      { payment_intent_id: pi, request_id: 'after-pay' },
      auth,
    );
    expect(refunded.status).toBe(200);
  });

  it('once expired, names its intent canceled, and the ledger says canceled as Stripe does', async () => {
    const { id, pi } = await declinedSession('declined-then-expired');
    await svc.deps.stripe.checkout.sessions.expire(id);
    const expired = await getJson(`${svc.url}/checkout-session?session_id=${id}`, auth);
    expect(expired.json).toMatchObject({ status: 'expired', payment_status: 'unpaid', payment_intent: pi });
    const atStripe = await svc.deps.stripe.paymentIntents.retrieve(pi);
    expect(atStripe.status).toBe('canceled');
    expect(await svc.deps.store.payments.get(pi)).toMatchObject({ status: atStripe.status });
  });
});
