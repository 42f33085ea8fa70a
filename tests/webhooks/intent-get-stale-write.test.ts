/**
 * A request that reads a payment intent from Stripe and records what it read (GET /payment-intent/{id}, and POST
 * /refund of an intent the ledger does not know as paid), beside an event of the same intent: the customer failed
 * 3D Secure (Stripe: `requires_payment_method`; its event not applied yet, the ledger still `requires_action`), the
 * request reads that, and its answer is held on the way back (a slow network, a busy pool) while the customer tries
 * another card that asks for 3D Secure and that attempt's `requires_action` event is applied. The request, let go,
 * answers what it read, but must not write that older status over the ledger's newer one: README (Webhooks) says
 * an intent's row ends at Stripe's later status, and no event comes later to put it right.
 */
import { describe, expect, it } from 'vitest';
import { databases, getJson, postJson, rabbitReady, sandboxEvents, useRig, type Rig } from './support/rig.js';

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

  /** An intent confirmed with a card that asks for 3D Secure, whose customer then fails it (no event applied yet). */
  async function failedOnce(): Promise<string> {
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
    await authenticate(rig, pi, 'fail');
    return pi;
  }

  /** The customer tries again with another card that asks for 3D Secure; that attempt's event is applied. */
  async function triedAgain(pi: string): Promise<void> {
    const again = await rig.dashboard.paymentIntents.confirm(pi, {
      payment_method: 'pm_card_threeDSecure2Required',
    });
    expect(again.status).toBe('requires_action');
    const events = (await sandboxEvents(rig, new Set(['payment_intent.requires_action']))).filter(
      (e) => (e.data.object as { id: string }).id === pi,
    );
    expect(events).toHaveLength(2);
    expect((await rig.send(JSON.stringify(events[1]))).status).toBe(200);
    await rig.settled();
    expect(await rig.svc.deps.store.payments.get(pi)).toMatchObject({ status: 'requires_action' });
  }

  /**
   * Sends `request`; while the service's read of `pi` it makes is held (having read requires_payment_method), runs
   * `meanwhile`; then lets the read go and gives the request's answer.
   */
  async function heldBeside<T>(
    pi: string,
    request: () => Promise<T>,
    meanwhile: () => Promise<void>,
  ): Promise<T> {
    const hold = holdNextRead(rig, pi);
    let answer: Promise<T>;
    try {
      answer = request();
      expect(await hold.held).toBe('requires_payment_method');
      await meanwhile();
    } finally {
      hold.restore();
    }
    return answer;
  }

  it('GET: its older read, written after a newer event was applied, leaves the ledger where Stripe is', async () => {
    const pi = await failedOnce();
    const got = await heldBeside(
      pi,
      () => getJson(`${rig.svc.url}/payment-intent/${pi}`),
      () => triedAgain(pi),
    );
    // Answered as read: the intent as Stripe had it when the GET asked.
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ id: pi, status: 'requires_payment_method' });
    await rig.settled();

    expect((await rig.dashboard.paymentIntents.retrieve(pi)).status).toBe('requires_action');
    expect(await rig.svc.deps.store.payments.get(pi)).toMatchObject({ status: 'requires_action' });
  });

  it('POST /refund: the read it refuses with, written after a newer event was applied, leaves the ledger where Stripe is', async () => {
    const pi = await failedOnce();
    const got = await heldBeside(
      pi,
      () => postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi }),
      () => triedAgain(pi),
    );
    expect(got.status).toBe(409);
    expect(got.json).toMatchObject({ code: 'payment_not_refundable' });
    await rig.settled();

    expect((await rig.dashboard.paymentIntents.retrieve(pi)).status).toBe('requires_action');
    expect(await rig.svc.deps.store.payments.get(pi)).toMatchObject({ status: 'requires_action' });
  });

  it('POST /refund: an event applied meanwhile that says succeeded is refunded, not refused with the older read', async () => {
    const pi = await failedOnce();
    const got = await heldBeside(
      pi,
      () => postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi }),
      async () => {
        // The customer pays with another card; that payment's event is applied while the refund's read is held.
        const paid = await rig.dashboard.paymentIntents.confirm(pi, { payment_method: 'pm_card_visa' });
        expect(paid.status).toBe('succeeded');
        const events = (await sandboxEvents(rig, new Set(['payment_intent.succeeded']))).filter(
          (e) => (e.data.object as { id: string }).id === pi,
        );
        expect(events).toHaveLength(1);
        expect((await rig.send(JSON.stringify(events[0]))).status).toBe(200);
        await rig.settled();
        expect(await rig.svc.deps.store.payments.get(pi)).toMatchObject({ status: 'succeeded' });
      },
    );
    expect(got.status, got.text).toBe(200);
    expect(got.json).toMatchObject({ success: true, refund: { amount: 2500, payment_intent: pi } });
    const refunds = await rig.dashboard.refunds.list({ payment_intent: pi });
    expect(refunds.data.map((r) => r.amount)).toEqual([2500]);
  });
});
