/**
 * A refund asked for what is left that Stripe refused for want of money left is lowered to what Stripe has left
 * (its ledger row's amount lowered, marked `payment_service_lowered_from`) and asked for again under keys that name
 * the amount (`refund:<key>@<amount>`): see what-is-left-refused.test.ts. The process making it can die right after
 * the lowering is committed: before its call to Stripe, or after Stripe made the lowered refund but before its
 * answer was recorded. The row is then `processing` without a Stripe refund, lowered, and the stuck-refund sweep
 * queues it again; the worker's next attempt looks at Stripe first (Stripe forgets idempotency keys after a day,
 * so the key alone does not keep a late attempt from refunding again when money is left), and is lowered again if
 * Stripe has even less left by then. Whatever the moment of the crash, the money moves once, and the ledger ends
 * holding exactly what Stripe refunded. (This was argued in the code, not tested; the tests found no bug.)
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type Stripe from 'stripe';
import {
  LOWERED_FROM_METADATA_KEY,
  refundRequestHash,
  stripeIdempotencyKey,
  stripeKeySeed,
} from '../../src/refunds/service.js';
import { requeueStuck } from '../../src/service.js';
import type { Refund } from '../../src/store/index.js';
import {
  databases,
  getJson,
  paidThroughService,
  postJson,
  rabbitReady,
  sandboxEvents,
  until,
  useRig,
  type Rig,
} from './support/rig.js';

const rabbit = await rabbitReady('a crash after a refund of what is left was lowered');
const dbs = await databases();

const METADATA = { order: 'o-1' };

/**
 * The ledger as a crash leaves it right after lowerToWhatIsLeft: refund `requestId` of what is left on `pi`
 * (1000), accepted for 1000 and begun by the worker (one attempt), its call refused by Stripe, the refund Stripe
 * had that the ledger lacked learnt (`dashboard`), and its amount lowered to `lowered`, through the store as the
 * service does it. Answers the lowered row.
 */
async function crashedAfterLowering(
  rig: Rig,
  pi: string,
  requestId: string,
  dashboard: Stripe.Refund,
  lowered: number,
): Promise<Refund> {
  const { store, refunds } = rig.svc.deps;
  await store.refunds.insert({
    requestId,
    owner: '',
    paymentIntentId: pi,
    amount: 1000,
    currency: 'usd',
    status: 'processing',
    attempts: 1,
    mode: 'async',
    requestHash: refundRequestHash({ payment_intent_id: pi, metadata: METADATA }),
    metadata: METADATA,
  });
  // The crashed attempt's call, as the service makes it (its SDK, its key), refused: less is left at Stripe.
  await expect(
    rig.svc.deps.stripe.refunds.create(
      { payment_intent: pi, amount: 1000, metadata: { ...METADATA, request_id: requestId } },
      { idempotencyKey: stripeIdempotencyKey(requestId) },
    ),
  ).rejects.toMatchObject({ type: 'StripeInvalidRequestError' });
  // What lowerToWhatIsLeft does then: learns the refunds Stripe has, and lowers the row to what is left there.
  await refunds.applyStripeRefund(dashboard);
  expect(
    await store.refunds.lowerAmount(requestId, 1000, lowered, {
      ...METADATA,
      [LOWERED_FROM_METADATA_KEY]: '1000',
    }),
  ).toBe(true);
  return (await store.refunds.get(requestId))!;
}

/** The stuck-refund sweep finds the refund (no message of its own left) and queues it; the worker finishes it. */
async function sweptAndFinished(rig: Rig, requestId: string): Promise<Record<string, unknown>> {
  // Stale from the moment it was last written (the service waits ten minutes; the test does not).
  const requeued = await until(async () => {
    await new Promise((r) => setTimeout(r, 5));
    return requeueStuck(rig.svc.deps, 0);
  }, 'the sweep to queue the refund again');
  expect(requeued).toBe(1);
  rig.svc.deps.relay.notify();
  return until(async () => {
    const r = await getJson(`${rig.svc.url}/refund-status/${requestId}`);
    return r.json.status !== 'queued' && r.json.status !== 'processing' && r.json;
  }, 'the worker to finish the refund');
}

/** Stripe's refunds of `pi` and the ledger agree, the request's refund made once, announced once. */
async function madeOnce(
  rig: Rig,
  pi: string,
  requestId: string,
  done: Record<string, unknown>,
  amount: number,
  others: number[],
): Promise<void> {
  expect(done).toMatchObject({ status: 'succeeded', amount, failure_reason: null });
  const atStripe = (await rig.dashboard.refunds.list({ payment_intent: pi, limit: 100 })).data;
  const ours = atStripe.filter((r) => r.metadata?.request_id === requestId);
  expect(ours).toHaveLength(1);
  expect(ours[0]).toMatchObject({
    id: done.refund_id,
    amount,
    metadata: { ...METADATA, request_id: requestId },
  });
  expect(atStripe.map((r) => r.amount).sort((a, b) => a - b)).toEqual(
    [...others, amount].sort((a, b) => a - b),
  );
  const charge = (await rig.dashboard.paymentIntents.retrieve(pi, { expand: ['latest_charge'] }))
    .latest_charge as Stripe.Charge;
  // The ledger holds what Stripe refunded: the request's refund at its amount, and the others learnt.
  expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(
    charge.amount_refunded,
  );
  expect(charge.amount_refunded).toBe(
    atStripe.filter((r) => r.status === 'succeeded').reduce((sum, r) => sum + r.amount, 0),
  );
  const row = (await rig.svc.deps.store.refunds.get(requestId))!;
  expect(row).toMatchObject({ amount, stripeRefundId: done.refund_id, status: 'succeeded' });

  await rig.settled();
  const outcomes = (await rig.drain(rig.topology.responses))
    .map((m) => m.body as Record<string, unknown>)
    .filter((b) => b.request_id === requestId);
  expect(outcomes).toEqual([
    expect.objectContaining({ success: true, status: 'succeeded', amount, refund_id: done.refund_id }),
  ]);

  // Nothing more is made: another sweep finds nothing stuck, another attempt and the request sent again find it.
  expect(await requeueStuck(rig.svc.deps, 0)).toBe(0);
  expect((await rig.svc.deps.refunds.process(requestId, true)).kind).toBe('done');
  const again = await postJson(`${rig.svc.url}/refund-async`, {
    payment_intent_id: pi,
    request_id: requestId,
    metadata: METADATA,
  });
  expect(again.status).toBe(202);
  expect((await rig.dashboard.refunds.list({ payment_intent: pi, limit: 100 })).data).toHaveLength(
    others.length + 1,
  );
}

describe.skipIf(!rabbit).each(dbs)('a crash after a refund of what is left was lowered, on %s', (db) => {
  // The sandbox sends no webhooks to the service: the dashboard refunds below are learnt only by the service.
  const rig = useRig(db, `what-is-left-crash.${db}`);
  afterEach(() => {
    vi.useRealTimers();
  });

  it('before its call to Stripe: the next attempt makes the lowered refund, once', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 1000);
    const dashboard = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 600 });
    const requestId = `crash-before-call-${db}`;
    await crashedAfterLowering(rig, pi, requestId, dashboard, 400);

    const done = await sweptAndFinished(rig, requestId);
    await madeOnce(rig, pi, requestId, done, 400, [600]);
  });

  it('after Stripe made the lowered refund, before its answer was recorded: it is found, not made again', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 1000);
    const dashboard = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 600 });
    const requestId = `crash-after-call-${db}`;
    const row = await crashedAfterLowering(rig, pi, requestId, dashboard, 400);
    // The crashed attempt's call, as the service makes it: its SDK, the lowered amount, the lowered key.
    const made = await rig.svc.deps.stripe.refunds.create(
      { payment_intent: pi, amount: 400, metadata: { ...METADATA, request_id: requestId } },
      { idempotencyKey: stripeIdempotencyKey(stripeKeySeed(row)) },
    );

    const done = await sweptAndFinished(rig, requestId);
    expect(done.refund_id).toBe(made.id);
    await madeOnce(rig, pi, requestId, done, 400, [600]);
  });

  it('after Stripe made the lowered refund, found more than a day later (its key forgotten), with money left again', async () => {
    // A dashboard refund that Stripe reports failed later: what it held is refundable again.
    const pi = await paidThroughService(rig, 'pm_card_refundFail', 1000);
    const dashboard = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 600 });
    const requestId = `crash-key-forgotten-${db}`;
    const row = await crashedAfterLowering(rig, pi, requestId, dashboard, 400);
    const made = await rig.svc.deps.stripe.refunds.create(
      { payment_intent: pi, amount: 400, metadata: { ...METADATA, request_id: requestId } },
      { idempotencyKey: stripeIdempotencyKey(stripeKeySeed(row)) },
    );
    // Meanwhile the dashboard refund fails at Stripe, and its event reaches the service: 600 is left again, so a
    // second refund of 400 under a key Stripe no longer knows would be made.
    await rig.settleRefund(dashboard.id);
    const failedEvent = (await sandboxEvents(rig, new Set(['refund.failed']))).find(
      (e) => (e.data.object as { id: string }).id === dashboard.id,
    );
    expect((await rig.send(JSON.stringify(failedEvent))).status).toBe(200);
    await rig.settled();
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(400);

    // The service (and Stripe) down for more than a day: Stripe keeps idempotency keys for 24 hours.
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    vi.setSystemTime(Date.now() + 25 * 3_600_000);
    const done = await sweptAndFinished(rig, requestId);
    expect(done.refund_id).toBe(made.id);
    await madeOnce(rig, pi, requestId, done, 400, [600]);
  });

  it('before its call, and Stripe has even less left by the next attempt: lowered again, made once', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 1000);
    const dashboard = await rig.dashboard.refunds.create({ payment_intent: pi, amount: 600 });
    const requestId = `crash-less-left-${db}`;
    await crashedAfterLowering(rig, pi, requestId, dashboard, 400);
    // Meanwhile another refund in the dashboard, its webhook not come either.
    await rig.dashboard.refunds.create({ payment_intent: pi, amount: 100 });

    const done = await sweptAndFinished(rig, requestId);
    await madeOnce(rig, pi, requestId, done, 300, [100, 600]);
    // Still marked with the amount first fixed, not the first lowering's.
    const row = (await rig.svc.deps.store.refunds.get(requestId))!;
    expect(row.metadata).toEqual({ ...METADATA, [LOWERED_FROM_METADATA_KEY]: '1000' });
  });
});
