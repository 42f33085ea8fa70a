/**
 * `npm run reconcile` against a ledger fed by webhooks that arrived late or not at all. The sandbox sends no
 * webhooks here: the test delivers the ones the ledger got, so whatever else happened in Stripe is drift.
 *
 * - A refund made in the dashboard whose refund.created arrived late (Stripe retries a failing endpoint for
 *   days) has a ledger row newer than the Stripe refund. With --since between the two, Stripe's list of the
 *   window leaves the refund out, and the ledger side only checked that Stripe still had it: a status it no
 *   longer matched (settled, failed) was never reported.
 * - A Stripe refund tagged with one of our request ids was taken for that ledger row whatever it was tied
 *   to, while the webhook path (applyStripeRefund) takes it for the row only on the same payment intent and
 *   when the row is not tied to another refund. A refund made for another payment under the same request id
 *   (another deployment sharing the Stripe account, a copied refund) was missing from the ledger, and
 *   reconcile said nothing.
 */
import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { reconcile } from '../../src/reconcile/index.js';
import {
  databases,
  paidInDashboard,
  paidThroughService,
  postJson,
  rabbitReady,
  sandboxEvents,
  useRig,
  until,
} from './support/rig.js';

const rabbit = await rabbitReady('reconcile against webhooks');
const dbs = await databases();

describe.skipIf(!rabbit).each(dbs)('reconcile on %s', (db) => {
  const rig = useRig(db, `reconcile.${db}`);

  /** The drifts reconcile reports since `since` about the given Stripe refunds (the tests share one ledger). */
  const drifts = async (since: Date, ...ids: string[]) =>
    (await reconcile({ store: rig.svc.deps.store, stripe: rig.svc.deps.stripe, since })).drifts.filter((d) =>
      ids.includes(d.id),
    );

  async function deliver(type: string, objectId: string): Promise<void> {
    const event = await until(async () => {
      const events = await sandboxEvents(rig, new Set([type]));
      return events.find((e) => (e.data.object as { id: string }).id === objectId);
    }, `the ${type} event of ${objectId}`);
    expect((await rig.send(JSON.stringify(event))).status).toBe(200);
    await rig.settled();
  }

  it('reports a refund learnt late whose status then drifted, though Stripe made it before the window', async () => {
    const pi = await paidInDashboard(rig, 'pm_card_pendingRefund', 2000);
    const refund = await rig.dashboard.refunds.create({ payment_intent: pi });
    expect(refund.status).toBe('pending');
    // Stripe's `created` counts whole seconds: the window starts in a later second than the refund's.
    const since = new Date(refund.created * 1000 + 1500);
    await new Promise((r) => setTimeout(r, Math.max(0, since.getTime() - Date.now()) + 200));
    await deliver('refund.created', refund.id);
    const row = (await rig.svc.deps.store.refunds.getByStripeId(refund.id))!;
    expect(row).toMatchObject({ status: 'pending', mode: 'external', amount: 2000 });
    expect(Date.parse(row.createdAt)).toBeGreaterThanOrEqual(since.getTime());
    expect(await drifts(since, refund.id)).toEqual([]);

    // Stripe settles it; that webhook never arrives.
    await rig.settleRefund(refund.id);
    expect((await rig.dashboard.refunds.retrieve(refund.id)).status).toBe('succeeded');
    expect(await drifts(since, refund.id)).toEqual([
      expect.objectContaining({
        kind: 'refund_status',
        id: refund.id,
        detail: 'ledger says pending, Stripe says succeeded',
      }),
    ]);
  });

  it("reports a Stripe refund tagged with a ledger refund's request id on another payment as missing", async () => {
    const since = new Date(Date.now() - 1000);
    const ours = await paidThroughService(rig, 'pm_card_visa', 1500);
    const made = await postJson(`${rig.svc.url}/refund`, {
      payment_intent_id: ours,
      request_id: `order-${db}-1`,
    });
    expect(made.status).toBe(200);
    const ourRefund = (made.json.refund as { id: string }).id;
    // The same request id on another payment, as another deployment on the same Stripe account tags its own.
    const elsewhere = await paidInDashboard(rig, 'pm_card_visa', 1500);
    const theirs: Stripe.Refund = await rig.dashboard.refunds.create({
      payment_intent: elsewhere,
      metadata: { request_id: `order-${db}-1` },
    });
    expect(await drifts(since, ourRefund, theirs.id)).toEqual([
      expect.objectContaining({ kind: 'refund_missing_in_ledger', id: theirs.id }),
    ]);

    // Once its webhook arrives the ledger records it as a refund of its own payment, and nothing drifts.
    await deliver('refund.created', theirs.id);
    expect(await rig.svc.deps.store.refunds.getByStripeId(theirs.id)).toMatchObject({
      mode: 'external',
      paymentIntentId: elsewhere,
      amount: 1500,
    });
    expect(await drifts(since, ourRefund, theirs.id)).toEqual([]);
  });
});
