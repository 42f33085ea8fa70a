/**
 * Why a refund ended, when Stripe cancels it: Stripe's canceled refund carries `failure_reason: merchant_request`
 * (docs.stripe.com/api/refunds/cancel). The ledger keeps Stripe's reason, so GET /refund-status and the outcome
 * message say it, and POST /refund sent again names it in its 409 refund_failed. The sandbox refunds only cards,
 * which Stripe never cancels: the refund is canceled by a proxy in front of it, which reports it as Stripe does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { startStripeCancelProxy } from '../helpers/stripe-cancel-proxy.js';
import {
  databases,
  getJson,
  paidThroughService,
  postJson,
  rabbitReady,
  sandboxEvents,
  useRig,
} from './support/rig.js';

const rabbit = await rabbitReady('a refund Stripe cancels');
const dbs = await databases();
const stripe = await startStripeCancelProxy();
afterAll(() => stripe.close());

describe.skipIf(!rabbit).each(dbs)('a refund Stripe cancels, on %s', (db) => {
  // The test delivers the refund's event itself.
  const rig = useRig(db, `canceled-reason.${db}`, { env: { STRIPE_API_BASE: stripe.url } });
  beforeAll(() => {
    stripe.target = rig.sandbox.url;
  });

  it('shows merchant_request as its failure_reason in /refund-status, its outcome and a retry', async () => {
    // Its refunds stay pending (the rig settles sandbox refunds after an hour): still open when Stripe cancels it.
    const pi = await paidThroughService(rig, 'pm_card_pendingRefund', 2000);
    const requestId = `canceled-${db}`;
    const body = { payment_intent_id: pi, amount: 700, request_id: requestId };
    const made = await postJson(`${rig.svc.url}/refund`, body);
    expect(made.status).toBe(200);
    expect(made.json.refund).toMatchObject({ status: 'pending' });
    const refundId = (made.json.refund as { id: string }).id;
    await rig.settled();
    await rig.drain(rig.topology.responses);

    stripe.cancel(refundId);
    const created = (await sandboxEvents(rig, new Set(['refund.created']))).find(
      (e) => (e.data.object as { id: string }).id === refundId,
    );
    expect(created).toBeDefined();
    const event = {
      ...created!,
      id: `evt_${randomBytes(12).toString('hex')}`,
      type: 'refund.updated',
      data: {
        object: { ...(created!.data.object as object), status: 'canceled' },
        previous_attributes: { status: 'pending' },
      },
    };
    expect((await rig.send(JSON.stringify(event))).status).toBe(200);
    await rig.settled();

    expect((await getJson(`${rig.svc.url}/refund-status/${requestId}`)).json).toMatchObject({
      status: 'canceled',
      refund_id: refundId,
      failure_reason: 'merchant_request',
    });
    const outcomes = (await rig.drain(rig.topology.responses))
      .map((m) => m.body as Record<string, unknown>)
      .filter((b) => b.request_id === requestId);
    expect(outcomes).toEqual([
      expect.objectContaining({ success: false, status: 'canceled', failure_reason: 'merchant_request' }),
    ]);
    const again = await postJson(`${rig.svc.url}/refund`, body);
    expect(again.status).toBe(200);
    expect(again.json.refund).toMatchObject({
      id: refundId,
      status: 'canceled',
      failure_reason: 'merchant_request',
    });
  });
});
