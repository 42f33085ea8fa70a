/**
 * Refunds made in the Stripe dashboard of a payment a shop made through the service, with API keys on. The
 * ledger records them (they count against what is left to refund) and announces their outcome on
 * `stripe_refund_responses` under a request id, like the shop's own refunds.
 *
 * That request id (`stripe:<refund id>`) was the ledger key as it was, outside the shop's namespace of
 * request ids: GET /refund-status/{request_id} with the shop's key answered 404 for the very request id the
 * outcome message named.
 *
 * The refund's owner was the owner the ledger knew for the payment intent when its event came. Stripe does not
 * deliver events in order, and after an outage of the endpoint retries each on its own schedule: a refund of a
 * hosted-checkout payment could be applied before the payment's own events, when the ledger knew only the
 * session (Stripe names the intent on it once paid). The refund then belonged to nobody, for good: its outcome
 * was announced under an id the shop could never look up. It is now learnt as a payment intent event learns
 * its owner, from the checkout session of the shop's that made it.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson } from '../helpers/http.js';
import {
  bearerOf,
  databases,
  paidThroughCheckout,
  rabbitReady,
  sandboxEvents,
  useRig,
  until,
} from './support/rig.js';

const rabbit = await rabbitReady('dashboard refunds with API keys');
const dbs = await databases();

describe.skipIf(!rabbit).each(dbs)('dashboard refunds of a shop payment on %s', (db) => {
  const rig = useRig(db, `external.${db}`, { deliverWebhooks: true, env: { API_AUTH: 'on' } });
  let shop: Record<string, string>;
  let other: Record<string, string>;
  beforeAll(async () => {
    shop = await bearerOf(rig, 'shop');
    other = await bearerOf(rig, 'other');
  });

  it('announces the outcome under a request id the shop can look up, and counts the amount', async () => {
    const paid = await postJson(
      `${rig.svc.url}/payment-intent`,
      { amount: 5000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true },
      shop,
    );
    expect(paid.status).toBe(200);
    const pi = paid.json.paymentIntentId as string;
    const refund = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 1200 });

    const outcome = await until(async () => {
      const messages = await rig.drain(rig.topology.responses);
      return messages
        .map((m) => m.body as Record<string, unknown>)
        .find((b) => b.refund_id === refund.id && b.status === 'succeeded');
    }, 'the outcome of the dashboard refund');
    expect(outcome).toMatchObject({ success: true, amount: 1200, payment_intent_id: pi });

    const status = await getJson(`${rig.svc.url}/refund-status/${String(outcome.request_id)}`, shop);
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({ refund_id: refund.id, status: 'succeeded', amount: 1200 });
    // Another owner still sees nothing of it.
    expect((await getJson(`${rig.svc.url}/refund-status/${String(outcome.request_id)}`, other)).status).toBe(
      404,
    );

    const intent = await getJson(`${rig.svc.url}/payment-intent/${pi}`, shop);
    expect(intent.json.amount_refunded).toBe(1200);
    const over = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi, amount: 3801 }, shop);
    expect(over.status).toBe(409);
    const rest = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi }, shop);
    expect(rest.status).toBe(200);
    expect(rest.json.refund).toMatchObject({ amount: 3800, status: 'succeeded' });
  });

  it('answers GET /refund-status for a dashboard refund a version before c1ab382 recorded outside the namespace', async () => {
    // As the earlier version (or a process of it during a rolling update) recorded it: the ledger key as it was.
    await rig.svc.deps.store.refunds.insert({
      requestId: 'stripe:re_recorded_by_earlier_version',
      owner: 'shop',
      paymentIntentId: 'pi_earlier_1',
      amount: 700,
      currency: 'usd',
      status: 'succeeded',
      stripeRefundId: 're_recorded_by_earlier_version',
      mode: 'external',
    });
    // Its outcome message named request_id stripe:<refund id> and owner shop: the shop looks that up.
    const mine = await getJson(`${rig.svc.url}/refund-status/stripe:re_recorded_by_earlier_version`, shop);
    expect(mine.status).toBe(200);
    expect(mine.json).toMatchObject({
      request_id: 'stripe:re_recorded_by_earlier_version',
      refund_id: 're_recorded_by_earlier_version',
      status: 'succeeded',
      amount: 700,
    });
    const theirs = await getJson(`${rig.svc.url}/refund-status/stripe:re_recorded_by_earlier_version`, other);
    expect(theirs.status).toBe(404);
  });
});

describe.skipIf(!rabbit).each(dbs)('a dashboard refund applied before its checkout payment on %s', (db) => {
  // The test delivers the events itself, so it chooses which arrive.
  const rig = useRig(db, `external-order.${db}`, { env: { API_AUTH: 'on' } });
  let shop: Record<string, string>;
  beforeAll(async () => {
    shop = await bearerOf(rig, 'shop');
  });

  it("is the shop's: its outcome names a request id the shop can look up", async () => {
    const pi = await paidThroughCheckout(rig, shop);
    const refund = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 2000 });
    // Only the refund's event has come yet; the payment's are still on their way.
    const [event] = (await sandboxEvents(rig, new Set(['refund.created']))).filter(
      (e) => (e.data.object as { id: string }).id === refund.id,
    );
    expect((await rig.send(JSON.stringify(event))).status).toBe(200);
    await rig.settled();

    const outcome = (await rig.drain(rig.topology.responses))
      .map((m) => m.body as Record<string, unknown>)
      .find((b) => b.refund_id === refund.id);
    expect(outcome).toMatchObject({ status: 'succeeded', amount: 2000, payment_intent_id: pi });
    const status = await getJson(`${rig.svc.url}/refund-status/${String(outcome!.request_id)}`, shop);
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({ refund_id: refund.id, status: 'succeeded', amount: 2000 });
    const left = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi }, shop);
    expect(left.status).toBe(200);
    expect(left.json.refund).toMatchObject({ amount: 4000 });
  });
});
