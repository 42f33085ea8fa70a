/**
 * GET /payment-intent/{id} and a payment intent event at once, the GET's older read written last: the GET reads the
 * intent from Stripe (`requires_action`, the customer has yet to authenticate), and its answer is held on its way
 * back (a slow network, a busy pool) while the customer fails 3D Secure and `payment_failed` is applied
 * (`requires_payment_method`). The GET, let go, answers what it read, but must not write that older status over the
 * ledger's newer one: README (Webhooks) promises that an intent's row ends at Stripe's later status, and no event
 * comes later to put it right.
 */
import { describe, expect, it } from 'vitest';
import { databases, getJson, rabbitReady, sandboxEvents, until, useRig, type Rig } from './support/rig.js';

const rabbit = await rabbitReady('GET /payment-intent and an event at once');
const dbs = await databases();

/**
 * Holds the answer of the service's next Stripe read of intent `id` (the real call, made unchanged) until released.
 */
function holdNextRead(rig: Rig, id: string) {
  const intents = rig.svc.deps.stripe.paymentIntents;
  const retrieve = intents.retrieve.bind(intents);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let markHeld!: (status: string) => void;
  const held = new Promise<string>((resolve) => (markHeld = resolve));
  let taken = false;
  intents.retrieve = (async (...args: Parameters<typeof retrieve>) => {
    const answer = await retrieve(...args);
    if (args[0] === id && !taken) {
      taken = true;
      markHeld(answer.status);
      await gate;
    }
    return answer;
  }) as typeof intents.retrieve;
  return {
    held,
    restore() {
      release();
      intents.retrieve = retrieve as typeof intents.retrieve;
    },
  };
}

async function authenticate(rig: Rig, pi: string, outcome: 'fail' | 'succeed'): Promise<void> {
  const res = await fetch(`${rig.sandbox.url}/_sandbox/payment_intents/${pi}/authenticate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ outcome }),
  });
  expect(res.status).toBe(200);
}

describe.skipIf(!rabbit).each(dbs)('GET /payment-intent/{id} beside an event, on %s', (db) => {
  const rig = useRig(db, `intent-get-stale.${db}`);

  it("the GET's older read, written after a newer event was applied, leaves the ledger where Stripe is", async () => {
    const created = await fetch(`${rig.svc.url}/payment-intent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        amount: 2500,
        currency: 'usd',
        payment_method: 'pm_card_threeDSecure2Required',
        confirm: true,
      }),
    });
    expect(created.status).toBe(200);
    const { paymentIntentId: pi, status } = (await created.json()) as {
      paymentIntentId: string;
      status: string;
    };
    expect(status).toBe('requires_action');
    // The customer fails 3D Secure; its event has not come yet (the ledger still says requires_action).
    await authenticate(rig, pi, 'fail');

    const hold = holdNextRead(rig, pi);
    let answer: Promise<Awaited<ReturnType<typeof getJson>>>;
    try {
      answer = getJson(`${rig.svc.url}/payment-intent/${pi}`);
      expect(await hold.held).toBe('requires_payment_method');

      // The customer tries again with another card that asks for 3D Secure; that attempt's event is applied.
      const again = await rig.dashboard.paymentIntents.confirm(pi, {
        payment_method: 'pm_card_threeDSecure2Required',
      });
      expect(again.status).toBe('requires_action');
      const events = (await sandboxEvents(rig, new Set(['payment_intent.requires_action']))).filter(
        (e) => (e.data.object as { id: string }).id === pi,
      );
      expect(events).toHaveLength(2);
      expect((await rig.send(JSON.stringify(events[0]))).status).toBe(200);
      await until(async () => (await rig.counts()).webhook_events >= 1, 'event stored');
      await rig.settled();
      expect(await rig.svc.deps.store.payments.get(pi)).toMatchObject({ status: 'requires_action' });
    } finally {
      hold.restore();
    }
    // Answered as read: the intent as Stripe had it when the GET asked.
    const got = await answer;
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ id: pi, status: 'requires_payment_method' });
    await rig.settled();

    expect((await rig.dashboard.paymentIntents.retrieve(pi)).status).toBe('requires_action');
    expect(await rig.svc.deps.store.payments.get(pi)).toMatchObject({ status: 'requires_action' });
  });
});
