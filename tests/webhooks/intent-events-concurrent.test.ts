/**
 * Two events of one payment intent applied at once: `payment_intent.requires_action` (3D Secure asked) and
 * `payment_intent.payment_failed` (the customer failed it: the intent is back to `requires_payment_method`). Each
 * is applied by reading the intent from Stripe. When the first event's read comes before the failure and its write
 * after the second event's, the ledger was left at `requires_action` while Stripe says `requires_payment_method`
 * (the row's guard keeps only the statuses Stripe never leaves). Now the ledger ends where Stripe is.
 */
import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { databases, rabbitReady, sandboxEvents, until, useRig, type Rig } from './support/rig.js';

const rabbit = await rabbitReady('payment intent events applied at once');
const dbs = await databases();

/**
 * Holds the service's first read of intent `id` from Stripe once Stripe has answered it, until released: the answer
 * it then hands back is as old as the moment it was read. Every other call goes through unchanged (the real SDK).
 */
function holdFirstRead(stripe: Stripe, id: string) {
  const intents = stripe.paymentIntents;
  const retrieve = intents.retrieve.bind(intents);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let markRead!: (status: string) => void;
  const read = new Promise<string>((resolve) => (markRead = resolve));
  let held = false;
  intents.retrieve = (async (...args: Parameters<typeof retrieve>) => {
    const answer = await retrieve(...args);
    if (args[0] === id && !held) {
      held = true;
      markRead(answer.status);
      await gate;
    }
    return answer;
  }) as typeof intents.retrieve;
  return {
    /** The status the held read got. */
    read,
    restore() {
      release();
      intents.retrieve = retrieve as typeof intents.retrieve;
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
  const rig = useRig(db, `intent-concurrent.${db}`);

  async function needing3ds(): Promise<string> {
    const pi = await rig.dashboard.paymentIntents.create({
      amount: 2500,
      currency: 'usd',
      payment_method: 'pm_card_threeDSecure2Required',
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
      confirm: true,
    });
    expect(pi.status).toBe('requires_action');
    return pi.id;
  }

  it('requires_action read before the failure and written after payment_failed: the ledger ends requires_payment_method', async () => {
    const pi = await needing3ds();
    const requiresAction = await eventOf(rig, 'payment_intent.requires_action', pi);
    const hold = holdFirstRead(rig.svc.deps.stripe, pi);
    try {
      expect((await rig.send(JSON.stringify(requiresAction))).status).toBe(200);
      // Its read has Stripe's answer (requires_action) and is held before it is written.
      expect(await hold.read).toBe('requires_action');

      await failAuthentication(rig, pi);
      const failed = await eventOf(rig, 'payment_intent.payment_failed', pi);
      expect((await rig.send(JSON.stringify(failed))).status).toBe(200);
      await until(
        async () => (await rig.svc.deps.store.payments.get(pi))?.status === 'requires_payment_method',
        'payment_failed applied',
      );
    } finally {
      // The first event's read goes on with its old answer.
      hold.restore();
    }
    await rig.settled();

    expect((await rig.dashboard.paymentIntents.retrieve(pi)).status).toBe('requires_payment_method');
    expect(await rig.svc.deps.store.payments.get(pi)).toMatchObject({ status: 'requires_payment_method' });
  });

  it('the two events delivered newest first, one after the other: the ledger ends requires_payment_method', async () => {
    const pi = await needing3ds();
    const requiresAction = await eventOf(rig, 'payment_intent.requires_action', pi);
    await failAuthentication(rig, pi);
    const failed = await eventOf(rig, 'payment_intent.payment_failed', pi);
    for (const e of [failed, requiresAction]) {
      expect((await rig.send(JSON.stringify(e))).status).toBe(200);
      await rig.settled();
    }
    expect(await rig.svc.deps.store.payments.get(pi)).toMatchObject({ status: 'requires_payment_method' });
  });
});
