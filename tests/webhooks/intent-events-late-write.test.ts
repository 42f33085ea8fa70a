/**
 * Two events of one payment intent applied at once, the older one's write landing last: `requires_action` is read
 * from Stripe and its row looked at (no other write), then its write is held (as a busy database pool, ownerOfIntent
 * asking Stripe for the intent's checkout session, or a pause would hold it) while the customer fails 3D Secure and
 * `payment_failed` is applied (`requires_payment_method`). The held write, let go, must not put the ledger back to
 * `requires_action`: it is written only if the row is still as it was looked at, else the intent is read again.
 * README (Webhooks): two events of one intent applied at once "end at Stripe's later status".
 */
import { describe, expect, it } from 'vitest';
import { eventOf, failAuthentication, holdWrite, intentNeeding3ds } from './support/intent-events.js';
import { databases, rabbitReady, until, useRig } from './support/rig.js';

const rabbit = await rabbitReady('payment intent events applied at once, late write');
const dbs = await databases();

describe.skipIf(!rabbit).each(dbs)('payment intent events applied at once, on %s', (db) => {
  const rig = useRig(db, `intent-late-write.${db}`);

  it("requires_action's write lands after payment_failed's: the ledger ends where Stripe is (requires_payment_method)", async () => {
    const pi = await intentNeeding3ds(rig);
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
