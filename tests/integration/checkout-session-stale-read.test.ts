/**
 * Two views of one checkout session are recorded at once on PostgreSQL: an older one (read from Stripe while the
 * customer was still on the page: `open`) and a newer one (`complete`, paid), as an event's applier and a
 * GET /checkout-session, or two appliers, do. recordSession locks the session's row so that the older view, written
 * last, cannot undo the newer one, and it keeps a `complete` or `expired` row as it is. But a session the ledger has
 * no row for yet (one made outside the service, such as a Payment Link's, or one whose row's write failed) has no
 * row to lock: both transactions found none, and the older view, written last, overwrote the newer one's
 * `complete` with `open`, for a session Stripe will never send another event about.
 *
 * The interleaving is made deterministic with a lock of the test's own: it holds the payment intent's row, which the
 * newer view's transaction locks after writing the session's row, so that transaction waits with that write not yet
 * committed while the older view's transaction, finding no row to lock, writes after it.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { getJson, payOnHostedPage } from '../helpers/http.js';
import { eventually } from '../helpers/service.js';
import { usePgLockRig } from '../helpers/pg-lock-rig.js';
import { POSTGRES_URL, postgresAvailable } from '../helpers/services.js';

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('a checkout session the ledger lacks, recorded from two reads at once', () => {
  const rig = usePgLockRig('stale_cs');
  const { waitsIn } = rig;

  it('ends complete when the older, open view is written last', async () => {
    const svc = rig.svc;
    const stripe = svc.deps.stripe;
    // Made at Stripe, not through the service (a Payment Link's, say): the ledger has no row for it.
    const made = await rig.lampSession();
    const older = await stripe.checkout.sessions.retrieve(made.id);
    expect(older.status).toBe('open');
    expect((await payOnHostedPage(made.url!)).status).toBe(303);
    const newer = await stripe.checkout.sessions.retrieve(made.id);
    expect(newer).toMatchObject({ status: 'complete', payment_status: 'paid' });
    const pi = newer.payment_intent as string;
    // The intent is known (its own event, or a GET of it, came first); its session is not.
    expect((await getJson(`${svc.url}/payment-intent/${pi}`)).json.status).toBe('succeeded');
    expect(await svc.deps.store.payments.get(made.id)).toBeNull();

    const holder = new pg.Client({ connectionString: POSTGRES_URL });
    await holder.connect();
    const writes: Promise<unknown>[] = [];
    try {
      const [schema] = await svc.sql('SELECT current_schema() AS s');
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM "${String(schema!['s'])}".payments WHERE id = $1 FOR UPDATE`, [pi]);
      // The newer view: writes the session's row, then waits for the intent's row, its write uncommitted.
      writes.push(svc.deps.payments.applyStripeSession(newer));
      expect(await eventually(() => waitsIn('%for update%'), Boolean)).toBe(true);
      // The older view: finds no row to lock, and its write waits for the newer view's transaction.
      writes.push(svc.deps.payments.applyStripeSession(older));
      expect(await eventually(() => waitsIn('insert into%payments%'), Boolean)).toBe(true);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
    await Promise.all(writes);

    expect(await svc.deps.store.payments.get(made.id)).toMatchObject({
      status: 'complete',
      paymentIntentId: pi,
      amount: 4200,
    });
    expect(await svc.deps.store.payments.get(pi)).toMatchObject({ status: 'succeeded', amount: 4200 });
  });
});
