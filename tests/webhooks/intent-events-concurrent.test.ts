/**
 * Two events of one payment intent applied at once: `payment_intent.requires_action` (3D Secure asked) and
 * `payment_intent.payment_failed` (the customer failed it: the intent is back to `requires_payment_method`). Each
 * is applied by reading the intent from Stripe. When the first event's read comes before the failure and its write
 * after the second event's, the ledger was left at `requires_action` while Stripe says `requires_payment_method`
 * (the row's guard keeps only the statuses Stripe never leaves). Now the ledger ends where Stripe is.
 */
import { describe, expect, it } from 'vitest';
import { eventOf, failAuthentication, holdFirstRead, intentNeeding3ds } from './support/intent-events.js';
import { databases, rabbitReady, until, useRig } from './support/rig.js';

const rabbit = await rabbitReady('payment intent events applied at once');
const dbs = await databases();

describe.skipIf(!rabbit).each(dbs)('payment intent events applied at once, on %s', (db) => {
  const rig = useRig(db, `intent-concurrent.${db}`);

  it('requires_action read before the failure and written after payment_failed: the ledger ends requires_payment_method', async () => {
    const pi = (await intentNeeding3ds(rig)).id;
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
    const pi = (await intentNeeding3ds(rig)).id;
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
