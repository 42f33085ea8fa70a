/**
 * POST /refund: Stripe made the refund, then the ledger could not record it (a trigger refuses the update,
 * as a full disk or a broken connection would). The money has moved, so the refund must not be marked failed
 * (nor a `failed` outcome sent to other services) as if Stripe had refused it; once the database is well
 * again, the refund settles as what Stripe made, once. PostgreSQL: the test needs a connection of its own to
 * add the trigger, and the service holds its SQLite file exclusively.
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

  it('is a server fault, never a failed refund, and settles as Stripe made it once the ledger is back', async () => {
    const pi = await paidIntent(svc.url, 5000);
    await svc.sql(`CREATE FUNCTION refuse_stripe_id() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'injected write failure'; END $$;
      CREATE TRIGGER refuse_stripe_id BEFORE UPDATE ON refunds FOR EACH ROW
        WHEN (NEW.stripe_refund_id IS NOT NULL AND OLD.stripe_refund_id IS NULL)
        EXECUTE FUNCTION refuse_stripe_id();`);
    let res: Awaited<ReturnType<typeof postJson>>;
    let meanwhile: Awaited<ReturnType<typeof getJson>>;
    try {
      res = await postJson(`${svc.url}/refund`, {
        payment_intent_id: pi,
        amount: 1500,
        request_id: 'unrecorded',
      });
      meanwhile = await getJson(`${svc.url}/refund-status/unrecorded`);
    } finally {
      await svc.sql('DROP TRIGGER refuse_stripe_id ON refunds; DROP FUNCTION refuse_stripe_id();');
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
  });
});
