/**
 * UNOWNED_PAYMENTS_OWNER and a checkout session naming no owner whose payment intent names another
 * (payment_intent_data.metadata): the session is not the unowned owner's, whichever the service learns first (the
 * intent, the session by GET /checkout-session, or the session's checkout.session.completed). That owner neither
 * reads nor refunds the intent; the owner the intent names reads it. (Before, the session's learning path and its
 * events looked at the session's metadata only and recorded session and intent under the unowned owner; and once
 * the session was in the ledger with no owner, the intent's named owner got 404.)
 */
import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { OWNER_METADATA_KEY } from '../../src/payments/service.js';
import { getJson, payOnHostedPage, postJson, postSignedWebhook } from '../helpers/http.js';
import { auth, useOwnerRig } from '../helpers/owner-rig.js';

describe('UNOWNED_PAYMENTS_OWNER and a session naming no owner whose intent names another', () => {
  // Each test decides what the service hears first.
  const rig = useOwnerRig('sqlite', { RATE_LIMIT_PER_MINUTE: '0', UNOWNED_PAYMENTS_OWNER: 'shop' });
  const { keys } = rig;

  /** A paid session made at Stripe naming no owner, its intent naming rival (payment_intent_data.metadata). */
  async function paidSession(): Promise<{ cs: string; pi: string }> {
    const made = await rig.svc.deps.stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [
        { price_data: { currency: 'usd', product_data: { name: 'Lamp' }, unit_amount: 2500 }, quantity: 1 },
      ],
      success_url: 'https://shop.example.com/ok?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: 'https://shop.example.com/no',
      payment_intent_data: { metadata: { [OWNER_METADATA_KEY]: 'rival' } },
    });
    expect((await payOnHostedPage(made.url!)).status).toBe(303);
    const session = await rig.svc.deps.stripe.checkout.sessions.retrieve(made.id);
    const pi = session.payment_intent as string;
    expect(session.metadata ?? {}).toEqual({});
    expect((await rig.svc.deps.stripe.paymentIntents.retrieve(pi)).metadata).toEqual({
      [OWNER_METADATA_KEY]: 'rival',
    });
    return { cs: session.id, pi };
  }

  /** Shop may neither read nor refund `pi`; rival reads it. */
  async function rivalsNotShops(pi: string): Promise<void> {
    expect.soft((await getJson(`${rig.svc.url}/payment-intent/${pi}`, auth(keys.shop!))).status).toBe(404);
    const refund = await postJson(
      `${rig.svc.url}/refund`,
      { payment_intent_id: pi, amount: 100 },
      auth(keys.shop!),
    );
    expect.soft(refund.status).toBe(404);
    expect
      .soft((await rig.svc.deps.stripe.refunds.list({ payment_intent: pi })).data.map((r) => r.amount))
      .toEqual([]);
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`, auth(keys.rival!))).status).toBe(200);
  }

  it("the intent asked for first: rival's, not shop's (as 5fda00a says)", async () => {
    const { pi } = await paidSession();
    await rivalsNotShops(pi);
  });

  it("the session asked for first (GET /checkout-session by shop): still not shop's", async () => {
    const { cs, pi } = await paidSession();
    // Shop is answered as for a session Stripe never made.
    const answer = async (id: string) => {
      const res = await getJson(`${rig.svc.url}/checkout-session?session_id=${id}`, auth(keys.shop!));
      return { status: res.status, body: { ...res.json, instance: 0, request_id: 0 } };
    };
    const unknown = await answer('cs_test_neverexisted0000000000');
    expect(unknown.status).toBe(404);
    expect(await answer(cs)).toEqual(unknown);
    await rivalsNotShops(pi);
  });

  it("the session's checkout.session.completed applied first: still not shop's", async () => {
    const { cs, pi } = await paidSession();
    const events = await rig.svc.deps.stripe.events.list({ type: 'checkout.session.completed', limit: 100 });
    const event = events.data.find((e) => (e.data.object as Stripe.Checkout.Session).id === cs);
    expect(event).toBeDefined();
    expect((await postSignedWebhook(rig.svc.url, rig.webhookSecret, JSON.stringify(event))).status).toBe(200);
    await rig.svc.deps.webhooks.idle();
    await rivalsNotShops(pi);
  });
});
