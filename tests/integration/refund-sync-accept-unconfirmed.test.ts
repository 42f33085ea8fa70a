/**
 * POST /refund whose accept commits but whose COMMIT goes unanswered (the connection drops on the way back): the
 * client gets a 503, and the ledger holds the refund `processing`, its amount reserved, with no Stripe call made.
 * The 503 says so: if recorded, the refund will be made, by the retry with the same request_id at once, or by the
 * service in the background. The retry with the same request_id takes the refund over once no attempt can still be
 * at work on it, and makes it under the same Stripe idempotency key, instead of 409 refund_in_progress until the
 * stuck-refund sweep (ten minutes).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestServiceBehindProxy, type TestService } from '../helpers/service.js';
import { postgresAvailable } from '../helpers/services.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('POST /refund whose accept commits unanswered (PostgreSQL)', () => {
  let proxy: TcpProxy;
  let svc: TestService;
  beforeAll(async () => {
    // A short Stripe timeout, without the SDK's retries: how long an attempt can be at work on a refund.
    ({ proxy, svc } = await startTestServiceBehindProxy({
      DATABASE_TIMEOUT_MS: '400',
      STRIPE_TIMEOUT_MS: '2000',
      STRIPE_MAX_NETWORK_RETRIES: '0',
    }));
  });
  afterAll(async () => {
    await proxy?.close();
    await svc?.stop();
  });

  /** A paid intent the ledger knows; `body` is posted to POST /refund and the answer to its COMMIT is lost. */
  async function refundWithCommitAnswerLost(body: (pi: string) => Record<string, unknown>) {
    const pi = await paidIntent(svc.url, 5000);
    const known = await eventually(
      () => svc.sql(`SELECT status FROM payments WHERE id = '${pi}'`),
      (rows) => rows.length === 1 && rows[0]!['status'] === 'succeeded',
      5_000,
    );
    expect(known).toEqual([{ status: 'succeeded' }]);
    proxy.loseAnswersAfter(pi, 'commit');
    try {
      return { pi, res: await postJson(`${svc.url}/refund`, body(pi)) };
    } finally {
      proxy.loseAnswersAfter(null, 'commit');
    }
  }

  /**
   * The retry the answers ask for, after the Retry-After each gives, until one is something other than 503 or 409
   * refund_in_progress (or 20 tries).
   */
  async function retryUntilAnswered(pi: string, requestId: string) {
    for (let i = 0; ; i++) {
      const r = await postJson(`${svc.url}/refund`, {
        payment_intent_id: pi,
        amount: 1000,
        request_id: requestId,
      });
      const waiting = r.status === 503 || (r.status === 409 && r.json.code === 'refund_in_progress');
      if (!waiting || i >= 20) return r;
      await new Promise((resolve) => setTimeout(resolve, 1000 * Number(r.headers.get('retry-after') ?? 1)));
    }
  }

  async function refundsAtStripe(pi: string) {
    return (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data.map((r) => r.amount);
  }

  it('with a request_id: the 503 says it will be made, and the retry makes it at once, and once', async () => {
    const requestId = `sync-unconfirmed-${randomBytes(4).toString('hex')}`;
    const { pi, res } = await refundWithCommitAnswerLost((id) => ({
      payment_intent_id: id,
      amount: 1000,
      request_id: requestId,
    }));
    expect(res.status).toBe(503);
    expect(res.json).toMatchObject({ status: 503, code: 'store_unavailable', retry_after: 1 });
    expect(String(res.json.detail)).toMatch(/will be made/);

    // The commit landed: recorded, not yet made.
    const status = await eventually(
      () => getJson(`${svc.url}/refund-status/${requestId}`),
      (r) => r.status !== 503,
      5_000,
    );
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({ request_id: requestId, status: 'processing', refund_id: null });

    const retried = await retryUntilAnswered(pi, requestId);
    expect(retried.status).toBe(200);
    expect(retried.json).toMatchObject({ success: true, request_id: requestId });
    expect(retried.json.refund).toMatchObject({
      amount: 1000,
      status: 'succeeded',
      id: expect.stringMatching(/^re_/),
    });
    expect(await refundsAtStripe(pi)).toEqual([1000]);
    // Asked again: the same refund, nothing more at Stripe.
    const again = await postJson(`${svc.url}/refund`, {
      payment_intent_id: pi,
      amount: 1000,
      request_id: requestId,
    });
    expect(again.status).toBe(200);
    expect(again.json.refund).toEqual(retried.json.refund);
    expect(await refundsAtStripe(pi)).toEqual([1000]);
  }, 60_000);

  it('without request_id: the 503 says a recorded refund will be made; sent again with its request_id, made once', async () => {
    const { pi, res } = await refundWithCommitAnswerLost((id) => ({ payment_intent_id: id, amount: 1000 }));
    expect(res.status).toBe(503);
    expect(res.json).toMatchObject({ status: 503, code: 'store_unavailable' });
    expect(res.headers.get('retry-after')).toBeNull();
    expect(String(res.json.detail)).toMatch(/will be made/);
    const requestId = /\/refund-status\/([\w-]+)/.exec(String(res.json.detail))?.[1];
    expect(requestId).toBeDefined();

    const status = await eventually(
      () => getJson(`${svc.url}/refund-status/${requestId}`),
      (r) => r.status !== 503,
      5_000,
    );
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({ request_id: requestId, status: 'processing' });

    const retried = await retryUntilAnswered(pi, requestId!);
    expect(retried.status).toBe(200);
    expect(retried.json).toMatchObject({ success: true, request_id: requestId });
    expect(retried.json.refund).toMatchObject({ amount: 1000, status: 'succeeded' });
    expect(await refundsAtStripe(pi)).toEqual([1000]);
  }, 60_000);
  // Retries may find the refund idle together: one of them takes it over and makes it, and the others are told it is
  // in progress (not that Stripe failed, nor that the refund did). refund-sync-takeover.test.ts makes the race certain.
  it('retries sent together once no attempt is at work make it once, and none is told it failed', async () => {
    const requestId = `sync-unconfirmed-${randomBytes(4).toString('hex')}`;
    const body = (pi: string) => ({ payment_intent_id: pi, amount: 1000, request_id: requestId });
    const { pi, res } = await refundWithCommitAnswerLost(body);
    expect(res.status).toBe(503);

    // Eight at a time, every second, until one of them has the refund (or 20 rounds). Stripe takes a second to make
    // a refund, so that the retries that did not take it over find it still in progress.
    const answers: { status: number; code: unknown }[] = [];
    await svc.faults({ latency_ms: 1000, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    try {
      for (let round = 0; round < 20 && !answers.some((a) => a.status === 200); round++) {
        if (round > 0) await new Promise((resolve) => setTimeout(resolve, 1000));
        const got = await Promise.all(
          Array.from({ length: 8 }, () => postJson(`${svc.url}/refund`, body(pi))),
        );
        answers.push(...got.map((r) => ({ status: r.status, code: r.json.code })));
      }
    } finally {
      await svc.faults({});
    }
    expect(answers.some((a) => a.status === 200)).toBe(true);
    for (const a of answers) {
      if (a.status === 200) continue;
      expect([
        { status: 409, code: 'refund_in_progress' },
        { status: 503, code: 'store_unavailable' },
      ]).toContainEqual(a);
    }
    expect(await refundsAtStripe(pi)).toEqual([1000]);
    const status = await getJson(`${svc.url}/refund-status/${requestId}`);
    expect(status.json).toMatchObject({ request_id: requestId, status: 'succeeded' });
  }, 60_000);
});
