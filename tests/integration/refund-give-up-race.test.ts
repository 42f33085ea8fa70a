/**
 * Stripe's answer for a refund (its webhook, or a late answer to an attempt) recorded while another process is giving
 * up on the refund (retries exhausted, or the delivery limit), on PostgreSQL. Giving up is one transaction: the UPDATE
 * to `failed` (only while no Stripe refund is tied to the row), then the outcome message, then the commit. Recording
 * Stripe's answer read the row as it was before that commit: it found nothing to put right, and then tied the Stripe
 * refund to the row once the give-up had committed. The row was left `failed` with a `refund_id`, which nothing can
 * put right (only a failed row without one is corrected), its amount released, while Stripe had made the refund.
 *
 * A connection of the test's own runs the give-up's UPDATE (RefundsRepo.giveUp's statement) and holds its transaction
 * open, as the giving-up process does for a few round trips, while the refund made at Stripe is recorded; then it
 * commits. SQLite runs one writing transaction at a time, so there is no such interleaving there.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refundRequestHash, stripeIdempotencyKey } from '../../src/refunds/service.js';
import { getJson, paidIntent } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { POSTGRES_URL, postgresAvailable } from '../helpers/services.js';

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)("a refund given up while Stripe's answer for it is recorded (postgres)", () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('postgres');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('ends as at Stripe, with its refund_id, not failed', async () => {
    const pi = await paidIntent(svc.url, 5000);
    const body = {
      payment_intent_id: pi,
      amount: 2000,
      request_id: `give-up-race-${randomBytes(4).toString('hex')}`,
    };
    // A queued refund the worker is at: its attempt begun, Stripe's answer not recorded yet.
    const row = await svc.deps.store.refunds.insert({
      requestId: body.request_id,
      paymentIntentId: pi,
      amount: 2000,
      currency: 'usd',
      status: 'processing',
      attempts: 1,
      mode: 'async',
      requestHash: refundRequestHash(body),
    });
    const [{ schema }] = (await svc.sql('SELECT current_schema() AS schema')) as [{ schema: string }];
    const holder = new pg.Client({ connectionString: POSTGRES_URL });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      // Another worker process gives up on it (its last answer from Stripe lost, and Stripe's list showed nothing
      // yet): RefundsRepo.giveUp's UPDATE, its transaction not committed yet.
      const given = await holder.query<{ xid: string }>(
        `UPDATE "${schema}".refunds SET status = 'failed', failure_reason = 'retries_exhausted:api_error',
           updated_at = $2
         WHERE request_id = $1 AND status IN ('queued', 'processing', 'pending', 'requires_action')
           AND stripe_refund_id IS NULL
         RETURNING txid_current()::text AS xid`,
        [row.requestId, new Date().toISOString()],
      );
      expect(given.rowCount).toBe(1);
      const xid = given.rows[0]!.xid;
      // Meanwhile the refund is made at Stripe, as the attempt asked for it (the same parameters and idempotency
      // key), and its answer is recorded, as its refund.created webhook has the service record it.
      const made = await svc.deps.stripe.refunds.create(
        { payment_intent: pi, amount: 2000, metadata: { request_id: row.requestId } },
        { idempotencyKey: stripeIdempotencyKey(row.requestId) },
      );
      const recorded = svc.deps.refunds.applyStripeRefund(made);
      // Recording it waits for the give-up's row lock.
      const waiting = await eventually(
        async () =>
          Number(
            (
              await holder.query<{ n: string }>(
                `SELECT count(DISTINCT pid) AS n FROM pg_locks
                 WHERE NOT granted AND locktype = 'transactionid' AND transactionid::text = $1`,
                [xid],
              )
            ).rows[0]!.n,
          ),
        (n) => n > 0,
      );
      expect(waiting).toBeGreaterThan(0);
      await holder.query('COMMIT');
      await recorded;

      const status = await eventually(
        () => getJson(`${svc.url}/refund-status/${body.request_id}`),
        (r) => r.json.status === 'succeeded',
      );
      expect(status.json).toMatchObject({ status: 'succeeded', refund_id: made.id, amount: 2000 });
      // What is left to refund counts it again, as Stripe does.
      const intent = await getJson(`${svc.url}/payment-intent/${pi}`);
      expect(intent.json.amount_refunded).toBe(2000);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
  });
});
