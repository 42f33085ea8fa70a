/**
 * Reconcile compared a payment's and a refund's amount with Stripe's but not their currency: a ledger that says
 * 2000 eur where Stripe has 2000 usd (a webhook that wrote another currency, a row restored or edited by hand) was
 * "no drift". The amount a row holds is only money with its currency, so a currency that differs is an amount
 * drift, reported with both currencies.
 */
import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { reconcile } from '../../src/reconcile/index.js';
import { reconcileStores, useReconcileRig } from '../helpers/reconcile-rig.js';

describe.each(reconcileStores)('reconcile on %s: currencies', (dialect) => {
  const rig = useReconcileRig(dialect, 'reccur', { refundSettleDelayMs: 3_600_000 });

  /** A paid intent of 2000 usd at Stripe and a refund of 500 of it, both in the ledger as `ledgerCurrency`. */
  async function paidAndRefunded(
    ledgerCurrency: string,
    refundCurrency: string | null,
  ): Promise<{ pi: Stripe.PaymentIntent; re: Stripe.Refund }> {
    const pi = await rig.stripe.paymentIntents.create({
      amount: 2000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
      confirm: true,
    });
    const re = await rig.stripe.refunds.create({ payment_intent: pi.id, amount: 500 });
    await rig.store.payments.insert({
      id: pi.id,
      kind: 'payment_intent',
      amount: 2000,
      currency: ledgerCurrency,
      status: 'succeeded',
    });
    await rig.store.refunds.insert({
      requestId: `stripe:${re.id}`,
      paymentIntentId: pi.id,
      amount: 500,
      currency: refundCurrency,
      status: re.status as 'succeeded',
      stripeRefundId: re.id,
      mode: 'external',
    });
    return { pi, re };
  }

  it('reports a payment and a refund the ledger holds in another currency than Stripe', async () => {
    const since = new Date(Date.now() - 60_000);
    const same = await paidAndRefunded('usd', 'usd');
    // A refund row whose currency is not known yet (a refund queued before Stripe answered) is no drift.
    const unknown = await paidAndRefunded('usd', null);
    const other = await paidAndRefunded('eur', 'eur');
    const report = await reconcile({ store: rig.store, stripe: rig.stripe, since });
    expect(report.checked).toMatchObject({
      payments: 3,
      stripePayments: 3,
      stripeRefunds: 3,
      ledgerRefunds: 3,
    });
    expect(report.drifts).toEqual(
      expect.arrayContaining([
        {
          kind: 'payment_amount',
          id: other.pi.id,
          detail: 'ledger says 2000 eur, Stripe says 2000 usd',
        },
        {
          kind: 'refund_amount',
          id: other.re.id,
          detail: 'ledger says 500 eur, Stripe says 500 usd',
        },
      ]),
    );
    expect(report.drifts).toHaveLength(2);
    const ids = [same.pi.id, same.re.id, unknown.pi.id, unknown.re.id];
    expect(report.drifts.filter((d) => ids.includes(d.id))).toEqual([]);
  });

  it('still says an amount that differs in the same currency as before', async () => {
    const since = new Date(Date.now() - 60_000);
    const pi = await rig.stripe.paymentIntents.create({
      amount: 3000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
      confirm: true,
    });
    await rig.store.payments.insert({
      id: pi.id,
      kind: 'payment_intent',
      amount: 2500,
      currency: 'usd',
      status: 'succeeded',
    });
    const report = await reconcile({ store: rig.store, stripe: rig.stripe, since });
    expect(report.drifts.filter((d) => d.id === pi.id)).toEqual([
      { kind: 'payment_amount', id: pi.id, detail: 'ledger says 2500, Stripe says 3000' },
    ]);
  });
});
