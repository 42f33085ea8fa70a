/**
 * Refunds made in the Stripe dashboard of a payment a shop made through the service, with API keys on. The
 * ledger records them (they count against what is left to refund) and announces their outcome on
 * `stripe_refund_responses` under a request id, like the shop's own refunds.
 *
 * That request id (`stripe:<refund id>`) was the ledger key as it was, outside the shop's namespace of
 * request ids: GET /refund-status/{request_id} with the shop's key answered 404 for the very request id the
 * outcome message named.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { getJson, postJson } from '../helpers/http.js';
import { databases, rabbitReady, startRig, until, type Rig } from './support/rig.js';

const rabbit = await rabbitReady('dashboard refunds with API keys');
const dbs = await databases();

describe.skipIf(!rabbit).each(dbs)('dashboard refunds of a shop payment on %s', (db) => {
  let rig: Rig;
  let shop: Record<string, string>;
  let other: Record<string, string>;
  beforeAll(async () => {
    rig = await startRig(db, `external.${db}`, { deliverWebhooks: true, env: { API_AUTH: 'on' } });
    const bearer = async (owner: string) => ({
      authorization: `Bearer ${(await createKey(rig.svc.deps.store.apiKeys, { owner, kind: 'secret' })).key}`,
    });
    shop = await bearer('shop');
    other = await bearer('other');
  });
  afterAll(async () => {
    await rig?.stop();
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
});
