/**
 * Two deliveries of one refund run on two workers (a relay republish after a crash, a sweep). One
 * is on its last attempt and its own call to Stripe is lost (a connection error) while the other's call with
 * the same idempotency key is still running; the refund is not listed yet, so it gives up and marks the refund
 * failed. Then the other worker's call returns: Stripe made the refund. The ledger must say what Stripe did.
 * The same holds for POST /refund when its own call is the slow one (a sweep handed the refund to a worker
 * meanwhile). (Had Stripe answered the overlapping call 409, the delivery would not give up at all: see
 * tests/integration/two-processes.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { postgresAvailable } from '../helpers/services.js';
import { eventually, startTestService, type Db, type TestService } from '../helpers/service.js';
import { gateRefundCreate } from '../helpers/stripe-gate.js';
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

  describe.each([
    { card: 'pm_card_visa', atStripe: 'succeeded', status: 'succeeded' },
    { card: 'pm_card_pendingRefund', atStripe: 'pending', status: 'pending' },
  ])(
    "a worker's answer ($atStripe) arriving after another delivery gave up",
    ({ card, atStripe, status }) => {
      it(`puts the refund right: it reads ${status}, as at Stripe`, async () => {
        const pi = await paidIntent(svc.url, 5000, { paymentMethod: card });
        const requestId = `late-answer-${atStripe}`;
        const slow = gateRefundCreate(svc.deps.stripe, { othersLost: true });
        try {
          const res = await postJson(`${svc.url}/refund-async`, {
            payment_intent_id: pi,
            amount: 1500,
            request_id: requestId,
          });
          expect(res.status).toBe(202);
          await slow.entered; // this service's worker is now waiting on Stripe
          // A second delivery of the same refund, on its last attempt, on another worker.
          const other = await svc.deps.refunds.process(requestKey('', requestId), true);
          expect(other.kind).toBe('failed');
          slow.release();
          await eventually(
            async () => (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data,
            (list) => list.length === 1,
          );
        } finally {
          slow.restore();
        }
        const stripeRefunds = (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data;
        expect(stripeRefunds).toHaveLength(1);
        expect(stripeRefunds[0]!.status).toBe(atStripe);
        const read = await eventually(
          () => getJson(`${svc.url}/refund-status/${requestId}`),
          (r) => r.json.status === status,
          5_000,
        );
        expect(read.json).toMatchObject({ status, refund_id: stripeRefunds[0]!.id, amount: 1500 });
      });
    },
  );

  describe('POST /refund whose Stripe call outlives a delivery that gave up on it', () => {
    it('answers and records what Stripe did: succeeded', async () => {
      const pi = await paidIntent(svc.url, 5000);
      const slow = gateRefundCreate(svc.deps.stripe, { othersLost: true });
      let answer: Awaited<ReturnType<typeof postJson>>;
      try {
        const pending = postJson(`${svc.url}/refund`, {
          payment_intent_id: pi,
          amount: 1200,
          request_id: 'late-sync-answer',
        });
        await slow.entered;
        // A sweep handed the long-running request to a worker, whose last attempt gives up on it.
        const other = await svc.deps.refunds.process(requestKey('', 'late-sync-answer'), true);
        expect(other.kind).toBe('failed');
        slow.release();
        answer = await pending;
      } finally {
        slow.restore();
      }
      const stripeRefunds = (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data;
      expect(stripeRefunds).toHaveLength(1);
      expect(stripeRefunds[0]!.status).toBe('succeeded');
      expect(answer.status).toBe(200);
      expect(answer.json).toMatchObject({
        success: true,
        request_id: 'late-sync-answer',
        refund: { id: stripeRefunds[0]!.id, status: 'succeeded', failure_reason: null },
      });
      const read = await getJson(`${svc.url}/refund-status/late-sync-answer`);
      expect(read.json).toMatchObject({ status: 'succeeded', refund_id: stripeRefunds[0]!.id, amount: 1200 });
    });
  });
});
