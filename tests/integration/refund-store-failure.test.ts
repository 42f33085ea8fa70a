/**
 * Stripe made the refund, then the ledger could not record it (a trigger refuses the update, as a full disk or
 * a broken connection would): on POST /refund, and in the worker for POST /refund-async. The money has moved,
 * so the refund must not be marked failed (nor a `failed` outcome sent to other services) as if Stripe had
 * refused it; once the database is well again, the refund settles as what Stripe made, once. PostgreSQL: the
 * test needs a connection of its own to add the trigger, and the service holds its SQLite file exclusively.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { postgresAvailable } from '../helpers/services.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('POST /refund whose Stripe answer cannot be recorded (PostgreSQL)', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('postgres');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  /** A trigger refuses every update that ties a refund row to a Stripe refund. */
  const refuseRecordingStripeRefunds = () =>
    svc.sql(`CREATE FUNCTION refuse_stripe_id() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'injected write failure'; END $$;
      CREATE TRIGGER refuse_stripe_id BEFORE UPDATE ON refunds FOR EACH ROW
        WHEN (NEW.stripe_refund_id IS NOT NULL AND OLD.stripe_refund_id IS NULL)
        EXECUTE FUNCTION refuse_stripe_id();`);
  const allowRecordingStripeRefunds = () =>
    svc.sql('DROP TRIGGER refuse_stripe_id ON refunds; DROP FUNCTION refuse_stripe_id();');

  it('a queued refund the worker cannot record is never given up as failed while Stripe has it', async () => {
    const pi = await paidIntent(svc.url, 5000);
    await refuseRecordingStripeRefunds();
    let meanwhile: Awaited<ReturnType<typeof getJson>>;
    try {
      const res = await postJson(`${svc.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 1500,
        request_id: 'unrecorded-async',
      });
      expect(res.status).toBe(202);
      // Every delivery fails to record Stripe's answer, until the delivery limit dead-letters the message: the
      // worker's last resort for a message that keeps failing for a reason that is not Stripe's.
      const deadLetter = svc.deps.topology.deadLetter;
      await eventually(
        () => svc.deps.broker.queueDepth(deadLetter),
        (n) => n === 1,
        30_000,
      );
      expect(await svc.deps.broker.queueDepth(deadLetter)).toBe(1);
      meanwhile = await getJson(`${svc.url}/refund-status/unrecorded-async`);
    } finally {
      await allowRecordingStripeRefunds();
    }
    const atStripe = (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data;
    expect(atStripe).toHaveLength(1);
    // Stripe made it: the amount stays reserved and nobody is told it failed.
    expect(meanwhile.json).toMatchObject({ status: 'processing', amount: 1500, failure_reason: null });

    const settled = await eventually(
      () => getJson(`${svc.url}/refund-status/unrecorded-async`),
      (r) => r.json.status === 'succeeded',
    );
    expect(settled.json).toMatchObject({ status: 'succeeded', refund_id: atStripe[0]!.id, amount: 1500 });
    expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data).toHaveLength(1);
    // Its outcomes, as published to other services (the outbox also holds the request for the worker).
    const outcomes = await svc.sql(
      `SELECT message_id FROM outbox WHERE message_id LIKE 'unrecorded-async#%'
         AND destination = '${svc.deps.topology.responses}' ORDER BY id`,
    );
    expect(outcomes.map((r) => String(r['message_id']).split('#')[1])).toEqual(['succeeded']);

    // Each failed delivery is logged once with its error, by the worker, under the refund's request_id: the queue's
    // 'message handler failed; requeueing' logged the same error again under the message id alone.
    const withError = svc.lines
      .map((l) => JSON.parse(l) as { msg: string; request_id?: string; messageId?: string; err?: unknown })
      .filter(
        (l) =>
          l.err !== undefined &&
          (l.request_id === 'unrecorded-async' || l.messageId?.startsWith('unrecorded-async#')),
      );
    expect(withError.map((l) => l.msg)).toContain('refund worker failed on a message');
    expect(withError.filter((l) => l.request_id !== 'unrecorded-async')).toEqual([]);
    // An attempt to be retried says what failed: the ledger's write, not Stripe (its reason alone was `P0001`).
    const retried = withError.filter((l) => l.msg === 'refund attempt failed; will retry');
    expect(retried.length).toBeGreaterThan(0);
    for (const l of retried) expect(l.err).toMatchObject({ message: 'injected write failure' });
  }, 60_000);

  it('is a server fault, never a failed refund, and settles as Stripe made it once the ledger is back', async () => {
    const pi = await paidIntent(svc.url, 5000);
    await refuseRecordingStripeRefunds();
    let res: Awaited<ReturnType<typeof postJson>>;
    let meanwhile: Awaited<ReturnType<typeof getJson>>;
    try {
      res = await postJson(
        `${svc.url}/refund`,
        { payment_intent_id: pi, amount: 1500, request_id: 'unrecorded' },
        { 'x-request-id': 'unrecorded-req' },
      );
      meanwhile = await getJson(`${svc.url}/refund-status/unrecorded`);
    } finally {
      await allowRecordingStripeRefunds();
    }
    const atStripe = (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data;
    expect(atStripe).toHaveLength(1);
    expect(atStripe[0]!.status).toBe('succeeded');
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(meanwhile.json).toMatchObject({ status: 'processing', amount: 1500, refund_id: null });

    // Stripe's webhook (or the stuck-refund sweep) records what Stripe made.
    const settled = await eventually(
      () => getJson(`${svc.url}/refund-status/unrecorded`),
      (r) => r.json.status === 'succeeded',
    );
    expect(settled.json).toMatchObject({ status: 'succeeded', refund_id: atStripe[0]!.id, amount: 1500 });
    expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data).toHaveLength(1);
    // Other services heard of one outcome for it: succeeded (a `failed` one would have told them otherwise).
    const outcomes = await svc.sql(
      "SELECT message_id FROM outbox WHERE message_id LIKE 'unrecorded#%' ORDER BY id",
    );
    expect(outcomes.map((r) => String(r['message_id']).split('#')[1])).toEqual(['succeeded']);
    // The 500 is one error line, the error handler's with the error: the request line was an error too.
    const errors = svc.lines
      .map((l) => JSON.parse(l) as { level: number; msg: string; reqId?: string })
      .filter((l) => l.reqId === 'unrecorded-req' && l.level >= 50);
    expect(errors.map((l) => l.msg)).toEqual(['request failed']);
  });
});
