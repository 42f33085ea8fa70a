/**
 * A refund made in the Stripe dashboard that the ledger does not know is recorded when its event comes. It was
 * inserted `processing` (its amount held) in one transaction and moved to the status Stripe reports in a second.
 * For a refund Stripe reports `failed` (its money back on the payment), every request in between saw the amount as
 * refunded: POST /refund for what is left got 409 amount_exceeds_refundable, and GET /payment-intent counted it
 * in `amount_refunded`. It is now recorded at its final status in one transaction: nothing of it shows before.
 *
 * The window is held open on PostgreSQL: a session of the test's own holds the outbox table in SHARE mode, so the
 * transaction that records the refund waits at the outcome message it writes, before it commits.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { POSTGRES_URL } from '../helpers/services.js';
import {
  databases,
  getJson,
  paidThroughService,
  postJson,
  rabbitReady,
  until,
  useRig,
} from './support/rig.js';

const rabbit = await rabbitReady('dashboard refunds recorded in one step');
const postgres = (await databases()).includes('postgres');

describe.skipIf(!rabbit || !postgres)('a failed dashboard refund the ledger learns [postgres]', () => {
  const rig = useRig('postgres', 'external-one-step');

  it('never holds its amount: a refund of the whole payment asked for meanwhile is made', async () => {
    const pi = await paidThroughService(rig, 'pm_card_refundFail', 1000);
    const made = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 1000 });
    await rig.settleRefund(made.id);
    const failed = await rig.dashboard.refunds.retrieve(made.id);
    expect(failed.status).toBe('failed');

    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    // The rig's schema (wh_<pid>_<random>): the only one of this process.
    const { rows: schemas } = await admin.query<{ nspname: string }>(
      'select nspname from pg_namespace where nspname like $1',
      [`wh\\_${process.pid}\\_%`],
    );
    expect(schemas).toHaveLength(1);
    const schema = schemas[0]!.nspname;
    let released = false;
    const release = async () => {
      if (released) return;
      released = true;
      await admin.query('rollback');
    };
    try {
      await admin.query('begin');
      await admin.query(`lock table "${schema}".outbox in share mode`);
      const applying = rig.svc.deps.refunds.applyStripeRefund(failed);
      applying.catch(() => undefined);
      // The recording transaction waits at its outcome message.
      const waiting = await until(async () => {
        const { rows } = await admin.query<{ n: number }>(
          'select count(*)::int as n from pg_locks where relation = $1::regclass and not granted',
          [`"${schema}".outbox`],
        );
        return rows[0]!.n > 0;
      }, 'the recording transaction to wait for the outbox');
      expect(waiting).toBe(true);

      // Meanwhile: nothing refunded, and the whole payment can be refunded.
      const intent = await getJson(`${rig.svc.url}/payment-intent/${pi}`);
      expect(intent.json.amount_refunded).toBe(0);
      const whole = postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi, amount: 1000 });
      // The refund's own outcome message waits for the outbox too: an answer before the release is a refusal.
      const early = await Promise.race([whole, new Promise((r) => setTimeout(() => r(null), 1_000))]);
      expect(early).toBeNull();

      await release();
      expect((await applying)?.status).toBe('failed');
      const answered = await whole;
      expect(answered.status).toBe(200);
      expect(answered.json.refund).toMatchObject({ amount: 1000, status: 'succeeded' });
    } finally {
      await release().catch(() => undefined);
      await admin.end();
    }
    const ledger = await rig.svc.deps.store.refunds.getByStripeId(made.id);
    expect(ledger).toMatchObject({ status: 'failed', amount: 1000, mode: 'external' });
  });
});
