/**
 * A refund made in the Stripe dashboard counts against what is left once its webhook is applied. Until then
 * (webhooks come seconds, or after an outage of the endpoint hours, later; or never), the ledger counts more as
 * left than Stripe has, and Stripe refuses a refund the ledger let through.
 *
 * POST /refund answered that refusal with Stripe's own 400 (`invalid_request`, "Refund amount ($5.00) is greater
 * than unrefunded amount on charge ($4.00)"): the answer for a malformed request, where the same refusal by the
 * service's own check is a 409 (`amount_exceeds_refundable`). A queued refund refused so ended `failed` with the
 * reason `invalid`. And the ledger stayed as wrong as before: `amount_refunded` left out the dashboard refund,
 * and every later refund was let through to be refused again, until the webhook came.
 */
import { describe, expect, it } from 'vitest';
import {
  databases,
  getJson,
  paidThroughService,
  postJson,
  rabbitReady,
  useRig,
  until,
} from './support/rig.js';

const rabbit = await rabbitReady('refunds refused for refunds made outside the service');
const dbs = await databases();

describe.skipIf(!rabbit).each(dbs)(
  'a refund Stripe refuses for a dashboard refund not heard of on %s',
  (db) => {
    // The sandbox sends no webhooks to the service: the dashboard refunds below stay unheard of.
    const rig = useRig(db, `outside.${db}`);

    it('POST /refund answers 409 amount_exceeds_refundable, and the ledger learns the dashboard refund', async () => {
      const pi = await paidThroughService(rig, 'pm_card_visa', 1000);
      await rig.dashboard.refunds.create({ payment_intent: pi, amount: 600 });

      const over = await postJson(`${rig.svc.url}/refund`, {
        payment_intent_id: pi,
        amount: 500,
        request_id: `over-${db}`,
      });
      expect({ status: over.status, code: over.json.code, param: over.json.param }).toEqual({
        status: 409,
        code: 'amount_exceeds_refundable',
        param: 'amount',
      });
      expect((await getJson(`${rig.svc.url}/refund-status/over-${db}`)).json).toMatchObject({
        status: 'failed',
        refund_id: null,
        failure_reason: 'amount_exceeds_refundable',
      });
      expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(600);

      // What is left is now the ledger's to say: its own 409 for too much, and the rest refunds.
      const again = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi, amount: 401 });
      expect(again.status).toBe(409);
      expect(again.json.detail).toContain('the 400 left');
      const rest = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi });
      expect(rest.status).toBe(200);
      expect(rest.json.refund).toMatchObject({ amount: 400, status: 'succeeded' });
      expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(1000);
    });

    it('a queued refund ends failed with the reason and its outcome says so; the ledger learns the dashboard refund', async () => {
      const pi = await paidThroughService(rig, 'pm_card_visa', 1000);
      await rig.dashboard.refunds.create({ payment_intent: pi, amount: 800 });
      const accepted = await postJson(`${rig.svc.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 500,
        request_id: `queued-over-${db}`,
      });
      expect(accepted.status).toBe(202);

      const done = await until(async () => {
        const r = await getJson(`${rig.svc.url}/refund-status/queued-over-${db}`);
        return r.json.status === 'failed' && r.json;
      }, 'the worker to record the refusal');
      expect(done).toMatchObject({ refund_id: null, failure_reason: 'amount_exceeds_refundable' });
      await rig.settled();
      const outcome = (await rig.drain(rig.topology.responses))
        .map((m) => m.body as Record<string, unknown>)
        .find((b) => b.request_id === `queued-over-${db}`);
      expect(outcome).toMatchObject({
        success: false,
        status: 'failed',
        failure_reason: 'amount_exceeds_refundable',
      });
      expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(800);
      const over = await postJson(`${rig.svc.url}/refund-async`, { payment_intent_id: pi, amount: 210 });
      expect({ status: over.status, code: over.json.code }).toEqual({
        status: 409,
        code: 'amount_exceeds_refundable',
      });
    });
  },
);
