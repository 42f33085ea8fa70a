/**
 * A restricted Stripe key (`rk_...`) that may read refunds but not make them: Stripe answers the refund 403
 * permission_error while its lists still answer. README promises that a refund Stripe refused for the service's key
 * is kept, its amount reserved, and made once the key is fixed. The worker's last attempt looked for the refund at
 * Stripe, found none (the list answered), and marked it failed (`retries_exhausted`): amount released, `failed`
 * announced, and the client had to ask again once the key was fixed.
 */
import { describe, expect, it } from 'vitest';
import { requeueStuck } from '../../src/service.js';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startSharedStripe, startTestService } from '../helpers/service.js';

describe('a queued refund Stripe refuses for the key (403 permission_error) on every attempt', () => {
  it('stays processing with its amount reserved, and is made once the key may refund', async () => {
    const stripe = await startSharedStripe();
    const svc = await startTestService('sqlite', {
      ...stripe.env,
      API_AUTH: 'off',
      RATE_LIMIT_PER_MINUTE: '0',
      WORKER_MAX_ATTEMPTS: '2',
      WORKER_RETRY_DELAYS_MS: '50',
      STRIPE_MAX_NETWORK_RETRIES: '0',
      LOG_LEVEL: 'silent',
    });
    try {
      const pi = await paidIntent(svc.url, 3000);
      await stripe.faults({
        permission_error_rate: 1,
        match: { method: 'POST', path_prefix: '/v1/refunds' },
      });
      const res = await postJson(`${svc.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 1200,
        request_id: 'key-may-not-refund',
      });
      expect(res.status).toBe(202);
      // Every attempt is spent: the message is dead-lettered.
      await eventually(
        () => svc.deps.broker.queueDepth(svc.deps.topology.deadLetter),
        (n) => n === 1,
      );

      expect((await getJson(`${svc.url}/refund-status/key-may-not-refund`)).json).toMatchObject({
        status: 'processing',
        refund_id: null,
      });
      // The amount stays reserved.
      const more = await postJson(`${svc.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 2000,
        request_id: 'key-may-not-refund-more',
      });
      expect(more.status).toBe(409);
      expect(more.json.code).toBe('amount_exceeds_refundable');

      // The key is given the permission; the stuck-refund sweep (run now rather than in 10 min) queues it again.
      await stripe.faults({});
      expect(await requeueStuck(svc.deps, 0)).toBe(1);
      svc.deps.relay.notify();
      const done = await eventually(
        () => getJson(`${svc.url}/refund-status/key-may-not-refund`),
        (r) => r.json.status !== 'processing',
      );
      expect(done.json).toMatchObject({ status: 'succeeded', amount: 1200 });
      expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data.map((r) => r.amount)).toEqual([
        1200,
      ]);
    } finally {
      await svc.stop();
      await stripe.close();
    }
  });
});
