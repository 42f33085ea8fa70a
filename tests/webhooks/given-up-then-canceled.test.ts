/**
 * A refund the worker gave up on (its messages kept failing, and Stripe did not list it then) is marked failed and
 * announced so. Stripe may have made it after all, and a refund that waits for the customer can then be canceled
 * there. When that news came (a refund.updated event, or a charge.refunded whose refunds are read), the ledger put
 * the refund right as it does for a refund Stripe made, and announced the move failed → canceled: a second outcome
 * message on `stripe_refund_responses` for one refund, with another status, though no money moved either way (a
 * consumer saw the refund "fail" twice), and a second count in `payments_refunds_final_total`. The row still takes
 * Stripe's id and status; nothing is announced or counted again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type Stripe from 'stripe';
import { startStripeCancelProxy } from '../helpers/stripe-cancel-proxy.js';
import {
  databases,
  getJson,
  paidThroughService,
  rabbitReady,
  sandboxEvents,
  useRig,
  type Rig,
} from './support/rig.js';

const rabbit = await rabbitReady('a given-up refund found canceled at Stripe');
const dbs = await databases();
// The service's Stripe: the rig's sandbox, but for the refunds the test has Stripe cancel.
const stripe = await startStripeCancelProxy();
afterAll(() => stripe.close());

async function finalCount(rig: Rig, status: string): Promise<number> {
  const text = await (await fetch(`${rig.svc.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`payments_refunds_final_total{status="${status}"}`));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe.skipIf(!rabbit).each(dbs)('a given-up refund that Stripe made and then canceled, on %s', (db) => {
  // The test delivers the events itself, so the worker never hears of the refund.
  const rig = useRig(db, `gave-up-canceled.${db}`, { env: { STRIPE_API_BASE: stripe.url } });
  beforeAll(() => {
    stripe.target = rig.sandbox.url;
  });

  // The news: Stripe's refund.updated of the cancel (its snapshot read again from Stripe, as every release is), or a
  // charge.refunded whose refunds are read from Stripe's list.
  it.each(['refund.updated', 'charge.refunded'])(
    'through %s: announced failed once; the ledger reads canceled with the Stripe id',
    async (news) => {
      const pi = await paidThroughService(rig, 'pm_card_visa', 3000);
      const requestId = `given-up-canceled-${news}-${db}`;
      // As the worker leaves a refund whose call's answer was lost: processing, no Stripe id.
      await rig.svc.deps.store.refunds.insert({
        requestId,
        owner: '',
        paymentIntentId: pi,
        amount: 1200,
        currency: 'usd',
        status: 'processing',
        attempts: 1,
        mode: 'async',
      });
      const failedBefore = await finalCount(rig, 'failed');
      const canceledBefore = await finalCount(rig, 'canceled');
      // Its messages kept failing: the worker gives up. Stripe does not have it (yet), so it fails, announced.
      const given = await rig.svc.deps.refunds.giveUpUnlessMade(requestId, 'worker_error');
      expect(given).toMatchObject({ status: 'failed', stripeRefundId: null });

      // The lost call had made it (the worker's calls name the request in the metadata); Stripe then cancels it.
      const made = await rig.dashboard.refunds.create({
        payment_intent: pi,
        amount: 1200,
        metadata: { request_id: requestId },
      });
      stripe.cancel(made.id);
      let event: Stripe.Event | undefined;
      if (news === 'refund.updated') {
        const created = (await sandboxEvents(rig, new Set(['refund.created']))).find(
          (e) => (e.data.object as { id: string }).id === made.id,
        );
        event = created && {
          ...created,
          id: `evt_${randomBytes(12).toString('hex')}`,
          type: 'refund.updated',
          data: {
            object: { ...made, status: 'canceled' },
            previous_attributes: { status: 'requires_action' },
          },
        };
      } else {
        event = (await sandboxEvents(rig, new Set(['charge.refunded']))).find(
          (e) => (e.data.object as { id: string }).id === made.charge,
        );
      }
      expect(event).toBeDefined();
      expect((await rig.send(JSON.stringify(event))).status).toBe(200);
      await rig.settled();

      const status = await getJson(`${rig.svc.url}/refund-status/${requestId}`);
      expect(status.json).toMatchObject({ status: 'canceled', refund_id: made.id });
      // Nothing counts against the payment: neither failed nor canceled moved money.
      expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(0);

      const outcomes = (await rig.drain(rig.topology.responses))
        .map((m) => m.body as Record<string, unknown>)
        .filter((b) => b.request_id === requestId);
      expect(outcomes).toEqual([
        expect.objectContaining({ success: false, status: 'failed', refund_id: null, amount: 1200 }),
      ]);
      expect(await finalCount(rig, 'failed')).toBe(failedBefore + 1);
      expect(await finalCount(rig, 'canceled')).toBe(canceledBefore);
    },
  );
});
