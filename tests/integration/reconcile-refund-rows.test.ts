/**
 * Which ledger row reconcile takes a Stripe refund for (the webhooks' rule, ledgerRowOf), on refunds the service
 * asked for whose answer the ledger did not record: one given up on that Stripe made after all, one lowered to what
 * was left (payment_service_lowered_from, a ledger-only mark Stripe never sees), and a refund tagged with a row's
 * request id for another amount, which is not that row's.
 */
import { describe, expect, it } from 'vitest';
import { reconcile } from '../../src/reconcile/index.js';
import { reconcileStores, useReconcileRig } from '../helpers/reconcile-rig.js';

describe.each(reconcileStores)(
  'reconcile on %s: refunds the ledger did not record an answer for',
  (dialect) => {
    const rig = useReconcileRig(dialect, 'recrows');

    /** A paid intent of 2000 usd, at Stripe and in the ledger, owned by shop. */
    async function paid(): Promise<string> {
      const pi = await rig.stripe.paymentIntents.create({
        amount: 2000,
        currency: 'usd',
        payment_method: 'pm_card_visa',
        automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
        confirm: true,
      });
      await rig.store.payments.insert({
        id: pi.id,
        kind: 'payment_intent',
        owner: 'shop',
        amount: 2000,
        currency: 'usd',
        status: 'succeeded',
      });
      return pi.id;
    }

    it('compares the row Stripe made the refund for, and takes no other refund for it', async () => {
      const since = new Date(Date.now() - 60_000);
      // Given up on (failed, its amount released), then made by Stripe after all.
      const givenUp = await paid();
      await rig.store.refunds.insert({
        requestId: 'shop/order-given-up',
        owner: 'shop',
        paymentIntentId: givenUp,
        amount: 700,
        currency: 'usd',
        status: 'failed',
        mode: 'async',
      });
      const made = await rig.stripe.refunds.create({
        payment_intent: givenUp,
        amount: 700,
        metadata: { request_id: 'shop/order-given-up' },
      });
      // Lowered from 2000 to what was left, made at Stripe, the answer not recorded (the process died).
      const lowered = await paid();
      await rig.store.refunds.insert({
        requestId: 'shop/order-lowered',
        owner: 'shop',
        paymentIntentId: lowered,
        amount: 1500,
        currency: 'usd',
        status: 'processing',
        mode: 'async',
        metadata: { note: 'n', payment_service_lowered_from: '2000' },
      });
      const madeLowered = await rig.stripe.refunds.create({
        payment_intent: lowered,
        amount: 1500,
        metadata: { note: 'n', request_id: 'shop/order-lowered' },
      });
      // Tagged with a row's request id, of its payment, for another amount: not that row's refund.
      const tagged = await rig.stripe.refunds.create({
        payment_intent: lowered,
        amount: 300,
        metadata: { request_id: 'shop/order-lowered' },
      });

      const report = await reconcile({ store: rig.store, stripe: rig.stripe, since });
      expect(report.drifts).toEqual(
        expect.arrayContaining([
          { kind: 'refund_status', id: made.id, detail: 'ledger says failed, Stripe says succeeded' },
          {
            kind: 'refund_status',
            id: madeLowered.id,
            detail: 'ledger says processing, Stripe says succeeded',
          },
          expect.objectContaining({ kind: 'refund_missing_in_ledger', id: tagged.id }),
        ]),
      );
      expect(report.drifts).toHaveLength(3);

      // Recorded as Stripe has them, only the stray refund is left.
      await rig.store.refunds.patch('shop/order-lowered', { stripeRefundId: madeLowered.id });
      await rig.store.refunds.advance('shop/order-lowered', { status: 'succeeded' });
      expect(await rig.store.refunds.get('shop/order-lowered')).toMatchObject({
        status: 'succeeded',
        amount: 1500,
      });
      expect(
        (await reconcile({ store: rig.store, stripe: rig.stripe, since })).drifts.filter(
          (d) => d.id !== made.id,
        ),
      ).toEqual([expect.objectContaining({ kind: 'refund_missing_in_ledger', id: tagged.id })]);
    });
  },
);
