/**
 * One request_id sent to POST /refund and then, with the same body, to POST /refund-async names the same refund
 * (nothing is made twice). A client whose POST /refund got a 503 ("it will be completed in the background") may
 * well send the request again to POST /refund-async. When that refund has failed meanwhile (the worker's retries
 * exhausted), the queued request was answered 202 `success: true`, "Refund request queued successfully": nothing
 * was queued and no refund will be made. It is answered as POST /refund answers it, 409 refund_failed with the
 * reason, and still nothing moves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService('sqlite', {
    RATE_LIMIT_PER_MINUTE: '0',
    WORKER_MAX_ATTEMPTS: '2',
    WORKER_RETRY_DELAYS_MS: '100',
    LOG_LEVEL: 'warn',
  });
});
afterAll(async () => {
  await svc?.stop();
});

describe('a refund POST /refund made, sent again to POST /refund-async', () => {
  it('that failed is answered 409 refund_failed, not 202 queued, and nothing is refunded', async () => {
    const pi = await paidIntent(svc.url, 4000);
    const body = { payment_intent_id: pi, amount: 1500, request_id: 'cross-mode-failed' };
    // Stripe is down for refunds: POST /refund hands the refund to the worker, whose retries run out.
    await svc.faults({ error_rate: 1, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    try {
      const sync = await postJson(`${svc.url}/refund`, body);
      expect(sync.status).toBe(503);
      const failed = await eventually(
        () => getJson(`${svc.url}/refund-status/cross-mode-failed`),
        (r) => r.json.status === 'failed',
      );
      expect(failed.json).toMatchObject({ status: 'failed', refund_id: null });
    } finally {
      await svc.faults({});
    }

    const queued = await postJson(`${svc.url}/refund-async`, body);
    expect(queued.status).toBe(409);
    expect(queued.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(queued.json).toMatchObject({ code: 'refund_failed' });
    expect(queued.json.detail).toContain('retries_exhausted');
    // As POST /refund answers the same request.
    const again = await postJson(`${svc.url}/refund`, body);
    expect(again.status).toBe(409);
    expect(again.json.code).toBe('refund_failed');

    // Nothing was queued or made: the refund is still failed, and Stripe has none.
    await new Promise((r) => setTimeout(r, 500));
    expect((await getJson(`${svc.url}/refund-status/cross-mode-failed`)).json.status).toBe('failed');
    expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data).toEqual([]);
  });

  it('that Stripe made and the bank returned is answered 409 refund_failed, not 202 queued', async () => {
    const pi = await paidIntent(svc.url, 3000, { paymentMethod: 'pm_card_refundFail' });
    const body = { payment_intent_id: pi, request_id: 'cross-mode-returned' };
    const sync = await postJson(`${svc.url}/refund`, body);
    expect(sync.status).toBe(200);
    expect(sync.json.refund).toMatchObject({ status: 'succeeded', amount: 3000 });
    const refundId = (sync.json.refund as { id: string }).id;
    await eventually(
      () => getJson(`${svc.url}/refund-status/cross-mode-returned`),
      (r) => r.json.status === 'failed',
    );

    const queued = await postJson(`${svc.url}/refund-async`, body);
    expect(queued.status).toBe(409);
    expect(queued.json).toMatchObject({ code: 'refund_failed' });
    expect(queued.json.detail).toContain('expired_or_canceled_card');
    expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data.map((r) => r.id)).toEqual([
      refundId,
    ]);
  });

  it('that succeeded is answered 202 with its status, and nothing more is refunded', async () => {
    const pi = await paidIntent(svc.url, 2000);
    const body = { payment_intent_id: pi, amount: 700, request_id: 'cross-mode-made' };
    const sync = await postJson(`${svc.url}/refund`, body);
    expect(sync.status).toBe(200);
    const queued = await postJson(`${svc.url}/refund-async`, body);
    expect(queued.status).toBe(202);
    expect(queued.json).toMatchObject({ success: true, request_id: 'cross-mode-made', status: 'succeeded' });
    await new Promise((r) => setTimeout(r, 300));
    expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data).toHaveLength(1);
  });
});
