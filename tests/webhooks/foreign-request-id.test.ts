/**
 * The ledger finds its own refund in a Stripe refund by the `request_id` the service puts in the refund's
 * metadata (a webhook can come before the service has recorded Stripe's answer). Nothing stops a refund made
 * outside the service (the Stripe dashboard, a shop's own tooling, the service this one replaced) from carrying
 * a `request_id` of its own in its metadata, such as the shop's order id, which is also the request id the shop
 * gave the service.
 *
 * Such a refund was taken for the service's: a queued refund (202, not yet sent to Stripe) was tied to it, so
 * the ledger showed it succeeded with the other refund's id and its own amount, and the worker then never made
 * it. The shop was told it refunded 300 when Stripe had refunded 700 and nothing else; the 300 was never sent.
 * A refund the service makes always has the amount of its ledger row, so a tagged refund of another amount is
 * not one of the service's.
 */
import { describe, expect, it } from 'vitest';
import { createRateLimiter } from '../../src/queue/rate-limiter.js';
import { startRefundWorker } from '../../src/refunds/worker.js';
import {
  databases,
  getJson,
  paidThroughService,
  postJson,
  rabbitReady,
  useRig,
  until,
} from './support/rig.js';

const rabbit = await rabbitReady('refunds of others tagged with a request id');
const dbs = await databases();

describe.skipIf(!rabbit).each(dbs)('a refund made outside the service with a request_id on %s', (db) => {
  // An API process only: accepted refunds wait in RabbitMQ until the test starts a worker.
  const rig = useRig(db, `foreign.${db}`, { deliverWebhooks: true, env: { ROLE: 'api' } });

  it('is recorded as made outside the service; the queued refund of that request id is still made', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 1000);
    const requestId = `order-1-${db}`;
    const accepted = await postJson(`${rig.svc.url}/refund-async`, {
      payment_intent_id: pi,
      amount: 300,
      request_id: requestId,
    });
    expect(accepted.status).toBe(202);
    const foreign = await rig.dashboard.refunds.create({
      payment_intent: pi,
      amount: 700,
      metadata: { request_id: requestId },
    });
    await until(() => rig.svc.deps.store.refunds.getByStripeId(foreign.id), 'the dashboard refund');
    await rig.settled();

    expect((await getJson(`${rig.svc.url}/refund-status/${requestId}`)).json).toMatchObject({
      status: 'queued',
      refund_id: null,
      amount: 300,
    });
    expect((await getJson(`${rig.svc.url}/refund-status/stripe:${foreign.id}`)).json).toMatchObject({
      status: 'succeeded',
      refund_id: foreign.id,
      amount: 700,
    });

    const worker = await startRefundWorker({
      broker: rig.svc.deps.broker,
      refunds: rig.svc.deps.refunds,
      logger: rig.svc.deps.logger,
      queue: rig.topology.requests,
      prefetch: 4,
      maxAttempts: 3,
      deliveryLimit: 5,
      limiter: createRateLimiter(null),
      storePing: () => rig.svc.deps.store.ping(),
    });
    let made: Record<string, unknown>;
    try {
      made = await until(async () => {
        const r = await getJson(`${rig.svc.url}/refund-status/${requestId}`);
        return r.json.status === 'succeeded' && r.json;
      }, 'the worker to make the queued refund');
    } finally {
      await worker.cancel();
    }
    const atStripe = (await rig.dashboard.refunds.list({ payment_intent: pi })).data;
    expect(atStripe.map((r) => r.amount).sort()).toEqual([300, 700]);
    expect(made.refund_id).not.toBe(foreign.id);
    expect(atStripe.find((r) => r.id === made.refund_id)?.amount).toBe(300);
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(1000);
  });
});
