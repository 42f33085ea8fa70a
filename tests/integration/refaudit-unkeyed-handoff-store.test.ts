/**
 * POST /refund without request_id or Idempotency-Key whose Stripe call did not succeed, and whose hand-over to the
 * worker the database did not take (it went silent meanwhile). The refund is recorded (`processing`, its amount
 * reserved), and the stuck-refund sweep makes it. The answer was the generic 503 store_unavailable, "Retry later with
 * the same request" and Retry-After, which retrying HTTP clients follow by themselves: the same body again is a new
 * request_id, and a second partial refund. It has no Retry-After and names the request_id to check instead.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson } from '../helpers/http.js';
import { postgresAvailable } from '../helpers/services.js';
import { eventually, startTestServiceBehindProxy, type TestService } from '../helpers/service.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('an unkeyed POST /refund whose hand-over the database did not take', () => {
  let proxy: TcpProxy;
  let svc: TestService;
  beforeAll(async () => {
    ({ proxy, svc } = await startTestServiceBehindProxy({
      DATABASE_TIMEOUT_MS: '400',
      STRIPE_MAX_NETWORK_RETRIES: '0',
      RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'warn',
    }));
  });
  afterAll(async () => {
    await proxy?.close();
    await svc?.stop();
  });

  it('answers 503 without Retry-After, naming the request_id of the refund it keeps', async () => {
    const paid = await postJson(`${svc.url}/payment-intent`, {
      amount: 5000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    const pi = paid.json.paymentIntentId as string;
    // Stripe takes a while, then fails the refund call (a 500 it saves under the key).
    await svc.faults({
      latency_ms: 1_000,
      execution_error_rate: 1,
      match: { method: 'POST', path_prefix: '/v1/refunds' },
    });
    let res: Awaited<ReturnType<typeof postJson>>;
    try {
      const pending = postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 1000 });
      // Accepted (the row is written) and at Stripe: the database goes silent before Stripe answers.
      const rows = await eventually(
        () => svc.sql(`SELECT request_id FROM refunds WHERE payment_intent_id = '${pi}'`),
        (r) => r.length === 1,
        5_000,
      );
      expect(rows).toHaveLength(1);
      proxy.blackHole();
      res = await pending;
    } finally {
      proxy.forward();
      await svc.faults({});
    }
    expect(res.status).toBe(503);
    expect(res.json.code).toBe('store_unavailable');
    expect(res.headers.get('retry-after')).toBeNull();
    expect(res.json).not.toHaveProperty('retry_after');
    const id = /\/refund-status\/([0-9a-f-]{36})\b/.exec(String(res.json.detail))?.[1];
    expect(id).toBeDefined();

    // Recorded, its amount reserved: the stuck-refund sweep (or a retry with that request_id) makes it.
    const status = await eventually(
      () => getJson(`${svc.url}/refund-status/${id!}`),
      (r) => r.status === 200,
      5_000,
    );
    expect(status.json).toMatchObject({ status: 'processing', amount: 1000 });
  });
});
