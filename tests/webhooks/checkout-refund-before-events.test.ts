/**
 * A shop refunds a payment made on the hosted checkout page, with API keys on, before the service has applied
 * the payment's webhooks. The ledger then knows only the session, as unpaid and naming no payment intent (Stripe
 * names it once the session is paid), so it cannot tell that the intent is the shop's. The shop can have the
 * intent's id by then: from its own Stripe webhooks, or from this service's `stripe.events` exchange, which
 * publishes an event as soon as it is stored, before it is applied; and the payment's events can come late
 * (Stripe retries a failed delivery for hours).
 *
 * POST /refund, POST /refund-async and GET /payment-intent/{id} answered 404 "No such payment intent" for the
 * shop's own paid payment, without asking Stripe, until the events came. The webhooks already learn the owner of such an intent from the
 * checkout session of the shop's that made it (see external-refunds.test.ts); a refund now does the same.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson } from '../helpers/http.js';
import { bearerOf, databases, paidThroughCheckout, rabbitReady, useRig, until } from './support/rig.js';

const rabbit = await rabbitReady('refunds of a checkout payment before its events');
const dbs = await databases();

describe.skipIf(!rabbit).each(dbs)('a refund of a checkout payment before its events on %s', (db) => {
  // No webhooks reach the service: the payment's events have not come.
  const rig = useRig(db, `checkout-early.${db}`, { env: { API_AUTH: 'on' } });
  let shop: Record<string, string>;
  let other: Record<string, string>;
  beforeAll(async () => {
    shop = await bearerOf(rig, 'shop');
    other = await bearerOf(rig, 'other');
  });

  const paidCheckout = () => paidThroughCheckout(rig, shop);

  it('is made, for the shop only; what is left counts it', async () => {
    const pi = await paidCheckout();
    // Another owner still gets 404, and nothing is refunded for it.
    const foreign = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi, amount: 100 }, other);
    expect({ status: foreign.status, code: foreign.json.code }).toEqual({
      status: 404,
      code: 'resource_missing',
    });

    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`, other)).status).toBe(404);
    const read = await getJson(`${rig.svc.url}/payment-intent/${pi}`, shop);
    expect(read.status).toBe(200);
    expect(read.json).toMatchObject({ id: pi, amount: 6000, status: 'succeeded', amount_refunded: 0 });

    const now = await postJson(
      `${rig.svc.url}/refund`,
      { payment_intent_id: pi, amount: 2000, request_id: `early-${db}` },
      shop,
    );
    expect(now.status).toBe(200);
    expect(now.json.refund).toMatchObject({ amount: 2000, status: 'succeeded', payment_intent: pi });
    const rest = await postJson(
      `${rig.svc.url}/refund-async`,
      { payment_intent_id: pi, request_id: `early-rest-${db}` },
      shop,
    );
    expect(rest.status).toBe(202);
    const done = await until(async () => {
      const r = await getJson(`${rig.svc.url}/refund-status/early-rest-${db}`, shop);
      return r.json.status === 'succeeded' && r.json;
    }, 'the queued refund of what is left');
    expect(done).toMatchObject({ amount: 4000 });
    expect(
      (await rig.dashboard.refunds.list({ payment_intent: pi })).data.map((r) => r.amount).sort(),
    ).toEqual([2000, 4000]);
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`, shop)).json.amount_refunded).toBe(6000);
  });
});
