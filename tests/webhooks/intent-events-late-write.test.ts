/**
 * Two events of one payment intent applied at once, the older one's write landing last: `requires_action` is read
 * from Stripe and its row looked at (no other write), then its write is held (as a busy database pool, ownerOfIntent
 * asking Stripe for the intent's checkout session, or a pause would hold it) while the customer fails 3D Secure and
 * `payment_failed` is applied (`requires_payment_method`). The held write, let go, must not put the ledger back to
 * `requires_action`: it is written only if the row is still as it was looked at, else the intent is read again.
 * README (Webhooks): two events of one intent applied at once "end at Stripe's later status".
 */
import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { databases, rabbitReady, sandboxEvents, until, useRig, type Rig } from './support/rig.js';

const rabbit = await rabbitReady('payment intent events applied at once, late write');
const dbs = await databases();

/**
 * Holds the service's first write of intent `id` at `status` (after the applier's last look at the row, before the
 * write reaches the database) until released. The write itself is the service's own, unchanged, with what the
 * applier passes it.
 */
function holdWrite(rig: Rig, id: string, status: string) {
  const payments = rig.svc.deps.payments;
  const apply = payments.applyStripePaymentIntent.bind(payments);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let markHeld!: () => void;
  const held = new Promise<void>((resolve) => (markHeld = resolve));
  let taken = false;
  payments.applyStripePaymentIntent = async (...args: Parameters<typeof apply>) => {
    const [pi] = args;
    if (pi.id === id && pi.status === status && !taken) {
      taken = true;
      markHeld();
      await gate;
    }
    return apply(...args);
  };
  return {
    held,
    restore() {
      release();
      payments.applyStripePaymentIntent = apply;
    },
  };
}

async function eventOf(rig: Rig, type: string, pi: string): Promise<Stripe.Event> {
  const events = (await sandboxEvents(rig, new Set([type]))).filter(
    (e) => (e.data.object as { id: string }).id === pi,
  );
  expect(events).toHaveLength(1);
  return events[0]!;
}

async function failAuthentication(rig: Rig, pi: string): Promise<void> {
  const res = await fetch(`${rig.sandbox.url}/_sandbox/payment_intents/${pi}/authenticate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ outcome: 'fail' }),
  });
  expect(res.status).toBe(200);
}

describe.skipIf(!rabbit).each(dbs)('payment intent events applied at once, on %s', (db) => {
  const rig = useRig(db, `intent-late-write.${db}`);

  it("requires_action's write lands after payment_failed's: the ledger ends where Stripe is (requires_payment_method)", async () => {
    const pi = await rig.dashboard.paymentIntents.create({
      amount: 2500,
      currency: 'usd',
      payment_method: 'pm_card_threeDSecure2Required',
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
      confirm: true,
    });
    expect(pi.status).toBe('requires_action');
    const requiresAction = await eventOf(rig, 'payment_intent.requires_action', pi.id);
    const hold = holdWrite(rig, pi.id, 'requires_action');
    try {
      expect((await rig.send(JSON.stringify(requiresAction))).status).toBe(200);
      // Read from Stripe (requires_action), its row looked at again (no write meanwhile): about to be written.
      await hold.held;

      await failAuthentication(rig, pi.id);
      const failed = await eventOf(rig, 'payment_intent.payment_failed', pi.id);
      expect((await rig.send(JSON.stringify(failed))).status).toBe(200);
      await until(
        async () => (await rig.svc.deps.store.payments.get(pi.id))?.status === 'requires_payment_method',
        'payment_failed applied',
      );
    } finally {
      hold.restore();
    }
    await rig.settled();

    expect((await rig.dashboard.paymentIntents.retrieve(pi.id)).status).toBe('requires_payment_method');
    expect(await rig.svc.deps.store.payments.get(pi.id)).toMatchObject({ status: 'requires_payment_method' });
  });
});
