/**
 * A POST whose Stripe call moves money (a confirmed payment intent, a refund) but whose answer the ledger cannot
 * record: the database went away during the Stripe call. The answer is a 503, but not "retry later" when the
 * request carried nothing to find the first try by (no Idempotency-Key, no request_id): its Stripe idempotency key
 * was a fresh one, so the retry a Retry-After asks for (retrying HTTP clients follow it by themselves) charges or
 * refunds the customer a second time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestServiceBehindProxy, type TestService } from '../helpers/service.js';
import { postgresAvailable } from '../helpers/services.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('the database away once Stripe has moved the money (PostgreSQL)', () => {
  let proxy: TcpProxy;
  let svc: TestService;
  beforeAll(async () => {
    ({ proxy, svc } = await startTestServiceBehindProxy({
      DATABASE_TIMEOUT_MS: '400',
      STRIPE_MAX_NETWORK_RETRIES: '0',
    }));
  });
  afterAll(async () => {
    // The proxy first: closing its sockets fails whatever still waits on one, so the service can close.
    await proxy?.close();
    await svc?.stop();
  });

  /** `body` posted to `path` while the database is silent: nothing before the Stripe call needs it (API keys are off). */
  async function postWhileDatabaseAway(path: string, body: Record<string, unknown>) {
    proxy.blackHole();
    try {
      return await postJson(`${svc.url}${path}`, body);
    } finally {
      proxy.forward();
    }
  }

  describe('POST /payment-intent', () => {
    it('confirmed, without a key: 503 with no Retry-After, naming the intent Stripe charged', async () => {
      const res = await postWhileDatabaseAway('/payment-intent', {
        amount: 2500,
        currency: 'usd',
        payment_method: 'pm_card_visa',
        confirm: true,
      });
      const atStripe = (await svc.deps.stripe.paymentIntents.list({ limit: 10 })).data;
      expect(atStripe.map((p) => p.status)).toEqual(['succeeded']);
      expect(res.status).toBe(503);
      expect(res.json).toMatchObject({ status: 503, code: 'store_unavailable' });
      expect(res.headers.get('retry-after')).toBeNull();
      expect(res.json.retry_after).toBeUndefined();
      expect(res.json.detail).toContain(atStripe[0]!.id);
    });

    it('not confirmed: nobody holds its client secret, so the retry the 503 asks for is harmless', async () => {
      const res = await postWhileDatabaseAway('/payment-intent', { amount: 2500, currency: 'usd' });
      expect(res.status).toBe(503);
      expect(res.json).toMatchObject({ code: 'store_unavailable', retry_after: 1 });
      expect(res.headers.get('retry-after')).toBe('1');
    });
  });

  describe('POST /refund', () => {
    it('without request_id or key: 503 with no Retry-After, naming the request_id whose status says it', async () => {
      const pi = await paidIntent(svc.url, 5000);
      // Stripe takes its time, so that the database can go away once the amount is reserved.
      await svc.faults({ latency_ms: 1_000, match: { method: 'POST', path_prefix: '/v1/refunds' } });
      let res: Awaited<ReturnType<typeof postJson>>;
      try {
        const pending = postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 1000 });
        const reserved = await eventually(
          () => svc.sql(`SELECT request_id FROM refunds WHERE payment_intent_id = '${pi}'`),
          (rows) => rows.length === 1,
          5_000,
        );
        expect(reserved).toHaveLength(1);
        proxy.blackHole();
        res = await pending;
      } finally {
        proxy.forward();
        await svc.faults({});
      }
      const atStripe = (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data;
      expect(atStripe.map((r) => [r.amount, r.status])).toEqual([[1000, 'succeeded']]);
      expect(res.status).toBe(503);
      expect(res.json).toMatchObject({ status: 503, code: 'store_unavailable' });
      expect(res.headers.get('retry-after')).toBeNull();
      expect(res.json.retry_after).toBeUndefined();

      const requestId = /\/refund-status\/([\w-]+)/.exec(String(res.json.detail))?.[1];
      expect(requestId).toBeDefined();
      const status = await getJson(`${svc.url}/refund-status/${requestId}`);
      expect(status.status).toBe(200);
      expect(status.json).toMatchObject({ request_id: requestId, amount: 1000 });
    });
  });
});
