/**
 * POST /refund-async whose write reaches the database but whose answer is lost on the way back (the connection
 * drops during the commit): the refund may or may not be recorded, and queued. A request with a `request_id` is
 * answered "retry later" (503 store_unavailable with Retry-After): its retry finds the refund if it was recorded.
 * A request with neither `request_id` nor Idempotency-Key got a request_id the service made up, so the retry a
 * Retry-After asks for (retrying HTTP clients follow it by themselves) would be a second refund, and two partial
 * refunds can both fit in what is left: that answer has no Retry-After and names the request_id to check.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestServiceBehindProxy, type TestService } from '../helpers/service.js';
import { postgresAvailable } from '../helpers/services.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('POST /refund-async whose write goes unanswered (PostgreSQL)', () => {
  let proxy: TcpProxy;
  let svc: TestService;
  beforeAll(async () => {
    ({ proxy, svc } = await startTestServiceBehindProxy({ DATABASE_TIMEOUT_MS: '400' }));
  });
  afterAll(async () => {
    // The proxy first: closing its sockets fails whatever still waits on one, so the service can close.
    await proxy?.close();
    await svc?.stop();
  });

  /**
   * A paid intent whose webhooks the service has applied, so that the next statement naming it is the refund's
   * own write: `body` is then posted, that statement reaches the database and its answer is lost.
   */
  async function postWithAnswerLost(
    body: (pi: string) => Record<string, unknown>,
    opts: { path?: string; headers?: Record<string, string> } = {},
  ) {
    const pi = await paidIntent(svc.url, 5000);
    const known = await eventually(
      () => svc.sql(`SELECT status FROM payments WHERE id = '${pi}'`),
      (rows) => rows.length === 1 && rows[0]!['status'] === 'succeeded',
      5_000,
    );
    expect(known).toEqual([{ status: 'succeeded' }]);
    proxy.loseAnswersTo(pi);
    try {
      return { pi, res: await postJson(`${svc.url}${opts.path ?? '/refund-async'}`, body(pi), opts.headers) };
    } finally {
      proxy.loseAnswersTo(null);
    }
  }

  it('without request_id or key: 503 with no Retry-After, naming the request_id to check or send again', async () => {
    const { pi, res } = await postWithAnswerLost((id) => ({ payment_intent_id: id, amount: 1000 }));
    expect(res.status).toBe(503);
    expect(res.json).toMatchObject({ status: 503, code: 'store_unavailable' });
    expect(res.headers.get('retry-after')).toBeNull();
    expect(res.json.retry_after).toBeUndefined();

    const requestId = /\/refund-status\/([\w-]+)/.exec(String(res.json.detail))?.[1];
    expect(requestId).toBeDefined();
    // The write landed: the status URL the answer names shows the refund.
    const status = await eventually(
      () => getJson(`${svc.url}/refund-status/${requestId}`),
      (r) => r.status !== 503,
      5_000,
    );
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({ request_id: requestId, amount: 1000 });
    // Sent again as the answer says, with that request_id: the same refund, not a second one.
    const again = await postJson(`${svc.url}/refund-async`, {
      payment_intent_id: pi,
      amount: 1000,
      request_id: requestId,
    });
    expect(again.status).toBe(202);
    expect(again.json).toMatchObject({ request_id: requestId });
    const rows = await svc.sql(`SELECT amount::int AS amount FROM refunds WHERE payment_intent_id = '${pi}'`);
    expect(rows).toEqual([{ amount: 1000 }]);
  });

  it('with a request_id: 503 with Retry-After, and the retry it asks for refunds once', async () => {
    const requestId = `unanswered-${randomBytes(4).toString('hex')}`;
    const { pi, res } = await postWithAnswerLost((id) => ({
      payment_intent_id: id,
      amount: 1000,
      request_id: requestId,
    }));
    expect(res.status).toBe(503);
    expect(res.json).toMatchObject({ status: 503, code: 'store_unavailable', retry_after: 1 });
    expect(res.headers.get('retry-after')).toBe('1');

    const retried = await eventually(
      () =>
        postJson(`${svc.url}/refund-async`, { payment_intent_id: pi, amount: 1000, request_id: requestId }),
      (r) => r.status !== 503,
      5_000,
    );
    expect(retried.status).toBe(202);
    const rows = await svc.sql(`SELECT amount::int AS amount FROM refunds WHERE payment_intent_id = '${pi}'`);
    expect(rows).toEqual([{ amount: 1000 }]);
  });

  it('with an Idempotency-Key: 503 with Retry-After, and the retry with the key refunds once', async () => {
    const key = { 'Idempotency-Key': `unanswered-${randomBytes(4).toString('hex')}` };
    const { pi, res } = await postWithAnswerLost((id) => ({ payment_intent_id: id, amount: 1000 }), {
      headers: key,
    });
    expect(res.status).toBe(503);
    expect(res.json).toMatchObject({ status: 503, code: 'store_unavailable', retry_after: 1 });
    expect(res.headers.get('retry-after')).toBe('1');

    const retried = await eventually(
      () => postJson(`${svc.url}/refund-async`, { payment_intent_id: pi, amount: 1000 }, key),
      (r) => r.status !== 503 && r.status !== 409,
      10_000,
    );
    expect(retried.status).toBe(202);
    const rows = await svc.sql(`SELECT amount::int AS amount FROM refunds WHERE payment_intent_id = '${pi}'`);
    expect(rows).toEqual([{ amount: 1000 }]);
  });

  it('POST /refund without request_id or key: no Retry-After; the request_id it names says whether to send again', async () => {
    const { pi, res } = await postWithAnswerLost((id) => ({ payment_intent_id: id, amount: 1000 }), {
      path: '/refund',
    });
    expect(res.status).toBe(503);
    expect(res.json).toMatchObject({ status: 503, code: 'store_unavailable' });
    expect(res.headers.get('retry-after')).toBeNull();
    expect(res.json.retry_after).toBeUndefined();
    const requestId = /\/refund-status\/([\w-]+)/.exec(String(res.json.detail))?.[1];
    expect(requestId).toBeDefined();

    // The synchronous path writes in a transaction, which the lost statement never let commit: not recorded.
    const status = await eventually(
      () => getJson(`${svc.url}/refund-status/${requestId}`),
      (r) => r.status !== 503,
      5_000,
    );
    expect(status.status).toBe(404);
    const again = await postJson(`${svc.url}/refund`, {
      payment_intent_id: pi,
      amount: 1000,
      request_id: requestId,
    });
    expect(again.status).toBe(200);
    const atStripe = (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data;
    expect(atStripe.map((r) => r.amount)).toEqual([1000]);
  });
});
