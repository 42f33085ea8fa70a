/**
 * A checkout session names its payment intent, and the ledger has no row for the intent: recordSession writes one,
 * with a status told by the session (an open, unpaid session's intent awaits another card: requires_payment_method).
 * On PostgreSQL the intent's own event may insert the intent's row, with a newer status (requires_action, while the
 * customer does 3-D Secure; processing), between the session's transaction finding no row to lock and its write.
 * That write was an upsert that kept only succeeded and canceled, so the status guessed from the session was written
 * over the intent's own. The guess now only inserts a row that does not exist; a row inserted meanwhile is locked
 * and treated as one found (the intent's own status stays, unless the session tells a final one: paid, expired).
 *
 * The interleaving is made deterministic with a transaction of the test's own, made through the service's store: it
 * inserts the intent's row (as the intent's event does) and stays open, so the session's transaction does not see
 * the row when it looks for one to lock and waits for it at its write; the test's transaction then commits.
 */
import { describe, expect, it } from 'vitest';
import { payOnHostedPage } from '../helpers/http.js';
import { eventually } from '../helpers/service.js';
import { usePgLockRig } from '../helpers/pg-lock-rig.js';
import { postgresAvailable } from '../helpers/services.js';

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)("a session's guess at its intent's status, recorded as the intent's event is", () => {
  const rig = usePgLockRig('cs_pi_race');
  const { waitsIn } = rig;

  it("keeps the intent's own newer status, which its event inserted after the session's transaction looked", async () => {
    const svc = rig.svc;
    const stripe = svc.deps.stripe;
    const made = await rig.lampSession({ order: 'race-1' });
    // A declined Pay: the session stays open and unpaid, and names the intent Stripe made for the attempt.
    await payOnHostedPage(made.url!, 'pm_card_chargeDeclined');
    const session = await stripe.checkout.sessions.retrieve(made.id);
    expect(session).toMatchObject({ status: 'open', payment_status: 'unpaid' });
    const pi = session.payment_intent as string;
    expect(pi).toMatch(/^pi_/);
    expect(await svc.deps.store.payments.get(pi)).toBeNull();

    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let inserted!: () => void;
    const insertedOnce = new Promise<void>((resolve) => (inserted = resolve));
    // The intent's event: its row, with the intent's own newer status, inserted and not yet committed.
    const intentEvent = svc.deps.store.transaction(async (tx) => {
      await tx.payments.upsert(
        {
          id: pi,
          kind: 'payment_intent',
          owner: '',
          amount: 4200,
          currency: 'usd',
          status: 'requires_action',
        },
        { finalStatuses: ['succeeded', 'canceled'] },
      );
      inserted();
      await released;
    });
    let sessionWrite: Promise<unknown> | undefined;
    try {
      await insertedOnce;
      // The session's view: finds no intent row to lock (the insert is not committed), and waits at its write.
      sessionWrite = svc.deps.payments.applyStripeSession(session);
      expect(await eventually(() => waitsIn('insert into%payments%'), Boolean)).toBe(true);
    } finally {
      release();
    }
    await intentEvent;
    await sessionWrite;

    expect(await svc.deps.store.payments.get(made.id)).toMatchObject({ status: 'open', paymentIntentId: pi });
    // The row is still filled in from the session where the event's left it empty (the client's metadata).
    expect(await svc.deps.store.payments.get(pi)).toMatchObject({
      status: 'requires_action',
      amount: 4200,
      metadata: { order: 'race-1' },
    });
  });
});
