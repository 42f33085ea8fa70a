/**
 * Two deliveries of one refund run on two workers (a relay republish after a crash, a sweep). One
 * is on its last attempt: Stripe answers it 409 (the other's call with the same idempotency key is still
 * running), the refund is not listed yet, so it gives up and marks the refund failed. Then the other
 * worker's call returns: Stripe made the refund. The ledger must say what Stripe did.
 */
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { postgresAvailable } from '../helpers/services.js';
import { eventually, startTestService, type Db, type TestService } from '../helpers/service.js';
import { requestKey } from '../../src/refunds/service.js';

const dbs: Db[] = ['sqlite', ...((await postgresAvailable()) ? (['postgres'] as const) : [])];

describe.each(dbs)('on %s', (db) => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService(db, { STRIPE_MAX_NETWORK_RETRIES: '0' });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  describe("a worker's answer arriving after another delivery gave up", () => {
    it('puts the refund right: it ends succeeded, as at Stripe', async () => {
      const pi = await paidIntent(svc.url, 5000);

      const refunds = svc.deps.stripe.refunds;
      const create = refunds.create.bind(refunds);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let inFlight = false;
      let entered!: () => void;
      const firstEntered = new Promise<void>((resolve) => (entered = resolve));
      refunds.create = (async (...args: Parameters<typeof create>) => {
        if (inFlight) {
          // What Stripe answers a second request with a key whose first request is still running.
          throw new Stripe.errors.StripeIdempotencyError({
            message: 'There is currently another in-progress request using this Stripe-Idempotency-Key.',
            statusCode: 409,
            type: 'idempotency_error',
          });
        }
        inFlight = true;
        entered();
        await gate; // the first worker's call is slow at Stripe
        try {
          return await create(...args);
        } finally {
          inFlight = false;
        }
      }) as typeof refunds.create;
      try {
        const res = await postJson(`${svc.url}/refund-async`, {
          payment_intent_id: pi,
          amount: 1500,
          request_id: 'late-answer',
        });
        expect(res.status).toBe(202);
        await firstEntered; // this service's worker is now waiting on Stripe
        // A second delivery of the same refund, on its last attempt, on another worker.
        const other = await svc.deps.refunds.process(requestKey('', 'late-answer'), true);
        expect(other.kind).toBe('failed');
        release();
        await eventually(
          async () => (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data,
          (list) => list.length === 1,
        );
      } finally {
        release();
        refunds.create = create as typeof refunds.create;
      }
      const stripeRefunds = (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data;
      expect(stripeRefunds).toHaveLength(1);
      expect(stripeRefunds[0]!.status).toBe('succeeded');
      const status = await eventually(
        () => getJson(`${svc.url}/refund-status/late-answer`),
        (r) => r.json.status === 'succeeded',
        5_000,
      );
      expect(status.json).toMatchObject({
        status: 'succeeded',
        refund_id: stripeRefunds[0]!.id,
        amount: 1500,
      });
    });
  });
});
