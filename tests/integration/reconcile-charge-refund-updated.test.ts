/**
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
import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { reconcile } from '../../src/reconcile/index.js';
import type { StripeClient } from '../../src/stripe/client.js';
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

describe.each(reconcileStores)('reconcile on %s: a card refund that failed in the window', (dialect) => {
  const rig = useReconcileRig(dialect, 'recchru', { refundSettleDelayMs: 3_600_000 });

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
    await rig.store.payments.insert({
      id: pi.id,
      kind: 'payment_intent',
      amount: pi.amount,
      currency: pi.currency,
      status: pi.status,
      createdAt: new Date(Date.now() - 2 * DAY),
    });
    await rig.store.refunds.insert({
      requestId: `stripe:${refund.id}`,
      paymentIntentId: pi.id,
      amount: refund.amount,
      currency: refund.currency,
      status: 'succeeded',
      stripeRefundId: refund.id,
      mode: 'external',
      createdAt: new Date(Date.now() - 2 * DAY),
    });

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
