/**
 * The worker's last attempt at a refund whose call got no answer in STRIPE_TIMEOUT_MS (Stripe slow, not down)
 * looked for the refund among the payment's refunds at Stripe, found none, and marked it failed
 * (`retries_exhausted`): its amount released, a `failed` outcome announced. But the call was still running at
 * Stripe, which made the refund a moment later: the client was told the refund failed while the money moved, and a
 * second refund of the same money (asked for again after the failure) would have been accepted. A call that got
 * no answer at all may still be at work at Stripe, where a list cannot see it yet: the refund stays `processing`,
 * its amount reserved, and the stuck-refund sweep's next attempt finds it at Stripe.
 */
import { describe, expect, it } from 'vitest';
import { requeueStuck } from '../../src/service.js';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startSharedStripe, startTestService } from '../helpers/service.js';

describe('the last attempt at a refund whose Stripe call outlasted STRIPE_TIMEOUT_MS', () => {
  it('leaves it processing, not failed, and the refund Stripe made is recorded', async () => {
    // A Stripe of its own that sends no webhooks: only the service's own look at Stripe can learn the refund.
    const stripe = await startSharedStripe();
    const svc = await startTestService('sqlite', {
      ...stripe.env,
      API_AUTH: 'off',
      RATE_LIMIT_PER_MINUTE: '0',
      WORKER_MAX_ATTEMPTS: '1',
      STRIPE_MAX_NETWORK_RETRIES: '0',
      STRIPE_TIMEOUT_MS: '300',
      LOG_LEVEL: 'warn',
    });
    try {
      const pi = await paidIntent(svc.url, 3000);
      // Stripe takes 1.5 s to make a refund; the service waits 0.3 s for an answer.
      await stripe.faults({ latency_ms: 1_500, match: { method: 'POST', path_prefix: '/v1/refunds' } });
      const res = await postJson(`${svc.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 1200,
        request_id: 'slow-stripe',
      });
      expect(res.status).toBe(202);
      // The worker's one attempt is spent: its message is dead-lettered.
      const deadLetter = svc.deps.topology.deadLetter;
      await eventually(
        () => svc.deps.broker.queueDepth(deadLetter),
        (n) => n === 1,
      );
      expect(await svc.deps.broker.queueDepth(deadLetter)).toBe(1);
      // Stripe finishes the call the service stopped waiting for.
      const atStripe = await eventually(
        async () => (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data,
        (list) => list.length === 1,
      );
      expect(atStripe.map((r) => r.amount)).toEqual([1200]);

      // Not failed: the money moved. The amount stays reserved, so no second refund of it is accepted.
      expect((await getJson(`${svc.url}/refund-status/slow-stripe`)).json).toMatchObject({
        status: 'processing',
        refund_id: null,
      });
      const again = await postJson(`${svc.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 2000,
        request_id: 'slow-stripe-again',
      });
      expect(again.status).toBe(409);
      expect(again.json.code).toBe('amount_exceeds_refundable');

      // The stuck-refund sweep (run now rather than after 10 min) queues it again; that attempt finds it at Stripe.
      await stripe.faults({});
      expect(await requeueStuck(svc.deps, 0)).toBe(1);
      svc.deps.relay.notify();
      const done = await eventually(
        () => getJson(`${svc.url}/refund-status/slow-stripe`),
        (r) => r.json.status !== 'processing',
      );
      expect(done.json).toMatchObject({ status: 'succeeded', amount: 1200, refund_id: atStripe[0]!.id });
      expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data).toHaveLength(1);
    } finally {
      await svc.stop();
      await stripe.close();
    }
  });
});
