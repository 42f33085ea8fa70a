/**
 * `npm run reconcile -- --since 24h` from cron compares what was made in the window. A refund or payment made before
 * it that Stripe changed in it, while its webhook never came, was compared by no run: a refund that succeeded and
 * failed two days later (the customer's bank sent it back) stayed `succeeded` in the ledger, and a payment confirmed
 * a day after it was made stayed `requires_payment_method`, each "no drift" on every run. Reconcile now also
 * compares the refunds and payment intents Stripe's events say changed in the window, whenever they were made.
 */
import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { reconcile } from '../../src/reconcile/index.js';
import { startSandbox } from '../../src/sandbox/index.js';
import { createStripeClient, type StripeClient } from '../../src/stripe/client.js';
import { captureLogger } from '../helpers/log-capture.js';
import { reconcileStores, useReconcileRig } from '../helpers/reconcile-rig.js';

const DAY = 86_400_000;

/** `stripe`, with its events listed as for an account on an API version before 2024-10-28.acacia. */
function beforeAcacia(stripe: StripeClient): StripeClient {
  const events = {
    list(params: Stripe.EventListParams) {
      const all = stripe.events.list(params) as AsyncIterable<Stripe.Event>;
      return (async function* () {
        for await (const ev of all) {
          const obj = ev.data.object as { charge?: unknown };
          if (ev.type.startsWith('refund.') && obj.charge) continue;
          yield ev;
        }
      })();
    },
  };
  return new Proxy(stripe, { get: (t, p) => (p === 'events' ? events : Reflect.get(t, p)) });
}

describe.each(reconcileStores)('reconcile on %s: made before the window, changed in it', (dialect) => {
  // Refunds settle only when the test says so.
  const rig = useReconcileRig(dialect, 'recchg', { refundSettleDelayMs: 3_600_000 });

  const intent = (card: string | null) =>
    rig.stripe.paymentIntents.create({
      amount: 2000,
      currency: 'usd',
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
      ...(card && { payment_method: card, confirm: true }),
    });

  /** The ledger's row of `pi` as its webhooks left it, written two days ago. */
  const recordPayment = (pi: Stripe.PaymentIntent) =>
    rig.store.payments.insert({
      id: pi.id,
      kind: 'payment_intent',
      amount: pi.amount,
      currency: pi.currency,
      status: pi.status,
      createdAt: new Date(Date.now() - 2 * DAY),
    });
  const recordRefund = (re: Stripe.Refund) =>
    rig.store.refunds.insert({
      requestId: `stripe:${re.id}`,
      paymentIntentId: re.payment_intent as string,
      amount: re.amount,
      currency: re.currency,
      status: re.status as 'succeeded',
      stripeRefundId: re.id,
      mode: 'external',
      createdAt: new Date(Date.now() - 2 * DAY),
    });

  /** The start of a window after everything made so far (Stripe's `created` counts whole seconds). */
  async function windowFromNow(): Promise<Date> {
    const since = new Date((Math.floor(Date.now() / 1000) + 1) * 1000 + 100);
    await new Promise((r) => setTimeout(r, since.getTime() - Date.now() + 50));
    return since;
  }

  it('reports a refund that failed after it succeeded, and a payment confirmed after it was made', async () => {
    const bounced = await intent('pm_card_refundFail');
    const bouncedRefund = await rig.stripe.refunds.create({ payment_intent: bounced.id });
    expect(bouncedRefund.status).toBe('succeeded');
    const later = await intent(null);
    expect(later.status).toBe('requires_payment_method');
    // Made before the window too, and changed in it, but the ledger heard of it: no drift.
    const heard = await intent(null);
    // Made before the window and not changed since: nothing to compare.
    const quiet = await intent('pm_card_visa');
    const quietRefund = await rig.stripe.refunds.create({ payment_intent: quiet.id, amount: 500 });
    for (const pi of [bounced, later, heard, quiet]) await recordPayment(pi);
    for (const re of [bouncedRefund, quietRefund]) await recordRefund(re);

    const since = await windowFromNow();
    expect((await reconcile({ store: rig.store, stripe: rig.stripe, since })).drifts).toEqual([]);

    // In the window: the bank sends the refund back, the customers pay; no webhook reaches the ledger.
    const settled = await fetch(`${rig.sandbox.url}/_sandbox/refunds/${bouncedRefund.id}/settle`, {
      method: 'POST',
    });
    expect(settled.status).toBe(200);
    expect((await rig.stripe.refunds.retrieve(bouncedRefund.id)).status).toBe('failed');
    await rig.stripe.paymentIntents.confirm(later.id, { payment_method: 'pm_card_visa' });
    const heardNow = await rig.stripe.paymentIntents.confirm(heard.id, { payment_method: 'pm_card_visa' });
    await rig.store.payments.update(heard.id, { status: heardNow.status });

    const report = await reconcile({ store: rig.store, stripe: rig.stripe, since });
    expect(report.drifts).toEqual(
      expect.arrayContaining([
        {
          kind: 'refund_status',
          id: bouncedRefund.id,
          detail: 'ledger says succeeded, Stripe says failed',
        },
        {
          kind: 'payment_status',
          id: later.id,
          detail: 'ledger says requires_payment_method, Stripe says succeeded',
        },
      ]),
    );
    expect(report.drifts).toHaveLength(2);
    expect(report.checked).toEqual({
      payments: 0,
      stripePayments: 0,
      stripeRefunds: 0,
      stripeChanged: 3,
      ledgerRefunds: 0,
    });
  });

  // Stripe lists 100 events a page at most: the changes past the first page are compared too.
  it('reads every page of the events of the window', async () => {
    const made: Stripe.PaymentIntent[] = [];
    for (let i = 0; i < 105; i++) made.push(await intent(null));
    for (const pi of made) await recordPayment(pi);
    const since = await windowFromNow();
    for (const pi of made) await rig.stripe.paymentIntents.confirm(pi.id, { payment_method: 'pm_card_visa' });
    const ids = new Set(made.map((pi) => pi.id));
    const report = await reconcile({ store: rig.store, stripe: rig.stripe, since });
    const drifted = report.drifts.filter((d) => ids.has(d.id));
    expect(drifted).toHaveLength(105);
    expect(new Set(drifted.map((d) => d.id))).toEqual(ids);
    expect(drifted.every((d) => d.kind === 'payment_status')).toBe(true);
  }, 60_000);

  // A refund its events name that Stripe no longer has (a sandbox keeping only its newest objects) is still said
  // to be missing at Stripe when the ledger has it.
  it('still reports a refund of the ledger that Stripe no longer has, though events name it', async () => {
    const small = await startSandbox({
      secretKey: rig.secret,
      refundSettleDelayMs: 3_600_000,
      maxObjects: 5,
    });
    try {
      const client = createStripeClient(
        { secretKey: rig.secret, apiBase: new URL(small.url), timeoutMs: 5_000, maxNetworkRetries: 0 },
        captureLogger().logger,
      );
      const pay = () =>
        client.paymentIntents.create({
          amount: 2000,
          currency: 'usd',
          automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
          payment_method: 'pm_card_pendingRefund',
          confirm: true,
        });
      const gone = await client.refunds.create({ payment_intent: (await pay()).id });
      expect(gone.status).toBe('pending');
      const since = await windowFromNow();
      // Learnt late, as a webhook that came in the window would record it.
      await rig.store.refunds.insert({
        requestId: `stripe:${gone.id}`,
        paymentIntentId: gone.payment_intent as string,
        amount: gone.amount,
        currency: gone.currency,
        status: 'pending',
        stripeRefundId: gone.id,
        mode: 'external',
      });
      const settled = await fetch(`${small.url}/_sandbox/refunds/${gone.id}/settle`, { method: 'POST' });
      expect(settled.status).toBe(200);
      for (let i = 0; i < 6; i++) await client.refunds.create({ payment_intent: (await pay()).id });
      await expect(client.refunds.retrieve(gone.id)).rejects.toMatchObject({ statusCode: 404 });

      const report = await reconcile({ store: rig.store, stripe: client, since });
      expect(report.drifts.filter((d) => d.id === gone.id)).toEqual([
        { kind: 'refund_missing_in_stripe', id: gone.id, detail: `ledger request stripe:${gone.id}` },
      ]);
    } finally {
      await small.close();
    }
  });

  /*
   * `npm run reconcile` compares a refund made before its window when Stripe's events of the window say it changed
   * (README: "a refund that failed days after it succeeded ... whose webhook never came, is a `refund_status` ... drift
   * on the next run"). It asked Stripe only for `refund.updated` and `refund.failed` events, not for
   * `charge.refund.updated`.
   *
   * Stripe sends `refund.created`, `refund.updated` and `refund.failed` for a refund of a charge (every card refund)
   * only from API version 2024-10-28.acacia on (docs.stripe.com/changelog/acacia/2024-10-28/refund-webhook-update:
   * "Previously, these events were only sent for refunds without a corresponding charge"). An account on an earlier
   * version learns that a card refund changed, a bank sending it back included, from `charge.refund.updated` alone.
   * The webhook side knew that (README lists `charge.refund.updated` among the events to select, and apply.ts applies
   * it as a refund event); reconcile did not, so for such an account a refund that succeeded and failed in the window,
   * its webhook lost, stayed `succeeded` in the ledger (its amount counted as refunded) while every run said "no
   * drift", exit 0. It now reads `charge.refund.updated` too.
   *
   * The sandbox speaks the newest version and sends both; the Stripe client below lists the window's events as Stripe
   * lists them for an account on a version before 2024-10-28.acacia: no refund.* event about a refund of a charge.
   */
  it('is a refund_status drift when Stripe announced the failure with charge.refund.updated only', async () => {
    const pi = await rig.stripe.paymentIntents.create({
      amount: 2000,
      currency: 'usd',
      payment_method: 'pm_card_refundFail',
      confirm: true,
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
    });
    const refund = await rig.stripe.refunds.create({ payment_intent: pi.id });
    expect(refund.status).toBe('succeeded');
    // The ledger as the webhooks left it two days ago.
    await recordPayment(pi);
    await recordRefund(refund);

    // A window after all that (Stripe's `created` counts whole seconds).
    const since = new Date((Math.floor(Date.now() / 1000) + 1) * 1000 + 100);
    await new Promise((r) => setTimeout(r, since.getTime() - Date.now() + 50));

    // In the window the customer's bank sends the refund back; no webhook reaches the ledger.
    const settled = await fetch(`${rig.sandbox.url}/_sandbox/refunds/${refund.id}/settle`, {
      method: 'POST',
    });
    expect(settled.status).toBe(200);
    expect((await rig.stripe.refunds.retrieve(refund.id)).status).toBe('failed');
    const stripe = beforeAcacia(rig.stripe);
    const types: string[] = [];
    for await (const ev of stripe.events.list({ created: { gte: Math.floor(since.getTime() / 1000) } }))
      if ((ev.data.object as { id?: string }).id === refund.id) types.push(ev.type);
    expect(types).toEqual(['charge.refund.updated']);

    const report = await reconcile({ store: rig.store, stripe, since });
    expect(report.drifts).toEqual([
      { kind: 'refund_status', id: refund.id, detail: 'ledger says succeeded, Stripe says failed' },
    ]);
  });
});
