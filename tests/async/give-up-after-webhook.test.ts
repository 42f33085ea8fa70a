/**
 * The worker gives up on a refund (last attempt lost Stripe's answer, and Stripe's list is
 * unreachable too) after a webhook already tied the row to the Stripe refund it made. The row must not
 * be marked failed: Stripe made the refund, and a failed row with a Stripe id can never be put right.
 */
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson } from '../helpers/http.js';
import { postgresAvailable } from '../helpers/services.js';
import { eventually, startTestService, type Db, type TestService } from '../helpers/service.js';

const dbs: Db[] = ['sqlite', ...((await postgresAvailable()) ? (['postgres'] as const) : [])];

describe.each(dbs)('on %s', (db) => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService(db, { WORKER_MAX_ATTEMPTS: '1', STRIPE_MAX_NETWORK_RETRIES: '0' });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  describe('giving up on a refund Stripe made and a webhook already recorded', () => {
    it('does not mark it failed; it ends succeeded as at Stripe', async () => {
      const created = await postJson(`${svc.url}/payment-intent`, {
        amount: 5000,
        currency: 'usd',
        payment_method: 'pm_card_pendingRefund',
        confirm: true,
      });
      expect(created.json.status).toBe('succeeded');
      const pi = created.json.paymentIntentId as string;

      const refunds = svc.deps.stripe.refunds;
      const create = refunds.create.bind(refunds);
      const list = refunds.list.bind(refunds);
      let made: Stripe.Refund | null = null;
      // Stripe makes the refund and its refund.created webhook is applied, then the answer to the worker is
      // lost; listing refunds fails as well (Stripe flapping).
      refunds.create = (async (...args: Parameters<typeof create>) => {
        made = await create(...args);
        await eventually(
          () => svc.deps.store.refunds.getByStripeId(made!.id),
          (row) => row !== null,
        );
        throw new Stripe.errors.StripeConnectionError({ message: 'connection reset' });
      }) as typeof refunds.create;
      refunds.list = (() => {
        throw new Stripe.errors.StripeConnectionError({ message: 'connection reset' });
      }) as unknown as typeof refunds.list;
      try {
        const res = await postJson(`${svc.url}/refund-async`, {
          payment_intent_id: pi,
          amount: 2000,
          request_id: 'give-up',
        });
        expect(res.status).toBe(202);
        // The worker has given up (or not) and the sandbox settles the pending refund after ~1 s.
        await eventually(
          () => getJson(`${svc.url}/refund-status/give-up`),
          (r) => r.json.status === 'failed' || r.json.status === 'succeeded',
        );
      } finally {
        refunds.create = create as typeof refunds.create;
        refunds.list = list as typeof refunds.list;
      }
      expect(made).not.toBeNull();
      const atStripe = await eventually(
        () => svc.deps.stripe.refunds.retrieve(made!.id),
        (r) => r.status === 'succeeded',
      );
      expect(atStripe.status).toBe('succeeded');
      const settled = await eventually(
        () => getJson(`${svc.url}/refund-status/give-up`),
        (r) => r.json.status === 'succeeded',
        5_000,
      );
      expect(settled.json).toMatchObject({ status: 'succeeded', refund_id: made!.id, amount: 2000 });
    });
  });
});
