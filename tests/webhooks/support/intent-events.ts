/**
 * Set-up of the tests that apply two events of one payment intent at once (tests/webhooks/intent-events-*.test.ts):
 * an intent that needs 3D Secure, its events from the sandbox, the customer failing 3D Secure, and holds on the
 * service's read from Stripe or its write to the ledger that let the test choose when the held call goes on.
 */
import type Stripe from 'stripe';
import { expect } from 'vitest';
import { sandboxEvents, type Rig } from './rig.js';

/** A payment intent, created and confirmed in the dashboard, that waits for 3D Secure (requires_action). */
export async function intentNeeding3ds(rig: Rig): Promise<Stripe.PaymentIntent> {
  const pi = await rig.dashboard.paymentIntents.create({
    amount: 2500,
    currency: 'usd',
    payment_method: 'pm_card_threeDSecure2Required',
    automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
    confirm: true,
  });
  expect(pi.status).toBe('requires_action');
  return pi;
}

/** The one event of `type` the sandbox sent for intent `pi`. */
export async function eventOf(rig: Rig, type: string, pi: string): Promise<Stripe.Event> {
  const events = (await sandboxEvents(rig, new Set([type]))).filter(
    (e) => (e.data.object as { id: string }).id === pi,
  );
  expect(events).toHaveLength(1);
  return events[0]!;
}

/** The customer fails 3D Secure for intent `pi`: it is back to requires_payment_method. */
export async function failAuthentication(rig: Rig, pi: string): Promise<void> {
  const res = await fetch(`${rig.sandbox.url}/_sandbox/payment_intents/${pi}/authenticate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ outcome: 'fail' }),
  });
  expect(res.status).toBe(200);
}

/** A hold on one call: the first to reach take() waits there until release(); `reached` resolves with its value. */
function holdOnce<T>() {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let reach!: (value: T) => void;
  const reached = new Promise<T>((resolve) => (reach = resolve));
  let taken = false;
  return {
    reached,
    release,
    async take(value: T): Promise<void> {
      if (taken) return;
      taken = true;
      reach(value);
      await gate;
    },
  };
}

/**
 * Holds the service's first read of intent `id` from Stripe once Stripe has answered it, until released: the answer
 * it then hands back is as old as the moment it was read. Every other call goes through unchanged (the real SDK).
 */
export function holdFirstRead(stripe: Stripe, id: string) {
  const intents = stripe.paymentIntents;
  const retrieve = intents.retrieve.bind(intents);
  const hold = holdOnce<string>();
  intents.retrieve = (async (...args: Parameters<typeof retrieve>) => {
    const answer = await retrieve(...args);
    if (args[0] === id) await hold.take(answer.status);
    return answer;
  }) as typeof intents.retrieve;
  return {
    /** The status the held read got. */
    read: hold.reached,
    restore() {
      hold.release();
      intents.retrieve = retrieve as typeof intents.retrieve;
    },
  };
}

/**
 * Holds the service's first write of intent `id` at `status` (after the applier's last look at the row, before the
 * write reaches the database) until released. The write itself is the service's own, unchanged, with what the
 * applier passes it.
 */
export function holdWrite(rig: Rig, id: string, status: string) {
  const payments = rig.svc.deps.payments;
  const apply = payments.applyStripePaymentIntent.bind(payments);
  const hold = holdOnce<void>();
  payments.applyStripePaymentIntent = async (...args: Parameters<typeof apply>) => {
    const [pi] = args;
    if (pi.id === id && pi.status === status) await hold.take();
    return apply(...args);
  };
  return {
    /** Resolves once the write is held. */
    held: hold.reached,
    restore() {
      hold.release();
      payments.applyStripePaymentIntent = apply;
    },
  };
}
