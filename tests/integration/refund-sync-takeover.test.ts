/**
 * POST /refund sent again for a synchronous refund that is `processing` with no Stripe id: the first request's
 * accept committed but its answer was lost (the client got a 503), or the process making it stopped. The ledger row
 * is written here as that accept left it (attempt 1 counted, the request's hash), its attempt begun long enough ago
 * that none can still be at work on it, or not.
 * - Retries sent together take it over once: one begins an attempt and makes the refund, the others are told it is
 *   in progress (or get the same refund), and the ledger counts one attempt more.
 * - While an attempt can still be at work, the 409 refund_in_progress asks for the retry after about as long as the
 *   attempt has been at work, but never later than the moment the retry would take the refund over.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attemptWindowMs, refundRequestHash } from '../../src/refunds/service.js';
import { paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestService, type Db, type TestService } from '../helpers/service.js';
import { POSTGRES_URL, postgresAvailable } from '../helpers/services.js';

const pgOk = await postgresAvailable();
const dbs: Db[] = ['sqlite', ...(pgOk ? (['postgres'] as const) : [])];

/**
 * A paid intent and the ledger row of a refund of 1000 on it whose accept committed `agoMs` ago with its answer lost
 * (mode `sync` unless said otherwise); answers the body that asks for it again.
 */
async function acceptedAgo(svc: TestService, agoMs: number, mode: 'sync' | 'async' = 'sync') {
  const pi = await paidIntent(svc.url, 5000);
  const body = {
    payment_intent_id: pi,
    amount: 1000,
    request_id: `takeover-${randomBytes(4).toString('hex')}`,
  };
  const row = await svc.deps.store.refunds.insert({
    requestId: body.request_id,
    paymentIntentId: pi,
    amount: 1000,
    currency: 'usd',
    status: 'processing',
    attempts: 1,
    mode,
    requestHash: refundRequestHash(body),
    createdAt: new Date(Date.now() - agoMs),
  });
  return { pi, body, row };
}

/** The refunds Stripe holds on `pi` for request `requestId`. */
async function stripeRefundsOf(svc: TestService, pi: string, requestId: string) {
  const all = await svc.deps.stripe.refunds.list({ payment_intent: pi, limit: 100 });
  return all.data.filter((r) => r.metadata?.request_id === requestId);
}

/** Longer than an attempt can be at work, shorter than the stuck-refund sweep waits (ten minutes). */
const IDLE_FOR_MS = 5 * 60_000;

describe.each(dbs)('POST /refund sent again for a synchronous refund in progress (%s)', (db) => {
  let svc: TestService;
  /** How long an attempt can be at work (the service's Stripe timeout and retries). */
  let windowMs: number;
  beforeAll(async () => {
    svc = await startTestService(db);
    windowMs = attemptWindowMs(svc.deps.config.stripe.timeoutMs, svc.deps.config.stripe.maxNetworkRetries);
  });
  afterAll(async () => {
    await svc?.stop();
  });

  /** POST /refund with `body`, and the time just before it was sent and just after its answer came. */
  async function timedPost(body: Record<string, unknown>) {
    const before = Date.now();
    const res = await postJson(`${svc.url}/refund`, body);
    return { res, before, after: Date.now() };
  }

  function retryAfterOf(res: Awaited<ReturnType<typeof postJson>>): number {
    expect(res.status).toBe(409);
    expect(res.json.code).toBe('refund_in_progress');
    const header = res.headers.get('retry-after');
    expect(header).toMatch(/^\d+$/);
    expect(res.json.retry_after).toBe(Number(header));
    return Number(header);
  }

  it('retries sent together once no attempt can be at work: one attempt, one refund at Stripe', async () => {
    const { pi, body, row } = await acceptedAgo(svc, IDLE_FOR_MS);
    expect(IDLE_FOR_MS).toBeGreaterThan(windowMs);
    // Stripe takes a second to make it, so the retry that did not take it over finds it still in progress.
    await svc.faults({ latency_ms: 1000, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    let answers: Awaited<ReturnType<typeof postJson>>[];
    try {
      answers = await Promise.all(Array.from({ length: 4 }, () => postJson(`${svc.url}/refund`, body)));
    } finally {
      await svc.faults({});
    }

    const atStripe = await stripeRefundsOf(svc, pi, body.request_id);
    expect(atStripe.map((r) => r.amount)).toEqual([1000]);
    const made = answers.filter((a) => a.status === 200);
    expect(made.length).toBeGreaterThanOrEqual(1);
    for (const a of made) expect(a.json.refund).toMatchObject({ id: atStripe[0]!.id, amount: 1000 });
    for (const a of answers.filter((x) => x.status !== 200)) retryAfterOf(a);

    // One attempt begun by the retries together.
    expect(await svc.deps.store.refunds.get(row.requestId)).toMatchObject({
      attempts: row.attempts + 1,
      stripeRefundId: atStripe[0]!.id,
      status: 'succeeded',
    });
  });

  it('an attempt just begun: Retry-After 1, as in the body', async () => {
    const { body, row } = await acceptedAgo(svc, 0);
    const { res, after } = await timedPost(body);
    const retryAfter = retryAfterOf(res);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    // About the attempt's age, which is under a second unless the test machine stalled.
    expect(retryAfter).toBeLessThanOrEqual(
      Math.max(1, Math.ceil((after - Date.parse(row.updatedAt)) / 1000)),
    );
  });

  it('an attempt begun 30 s ago: Retry-After about 30 s, the time it has been at work', async () => {
    const { body, row } = await acceptedAgo(svc, 30_000);
    const { res, before, after } = await timedPost(body);
    const retryAfter = retryAfterOf(res);
    const began = Date.parse(row.updatedAt);
    expect(retryAfter * 1000).toBeGreaterThanOrEqual(before - began);
    expect(retryAfter * 1000).toBeLessThan(after - began + 1000);
  });

  it('an attempt about to be past the window: Retry-After brings the retry that takes it over, no later', async () => {
    const { body, row } = await acceptedAgo(svc, windowMs - 3_000);
    const { res, before, after } = await timedPost(body);
    const retryAfter = retryAfterOf(res);
    // The moment a retry takes the refund over: the retry asked for comes then, within a second after.
    const idleAt = Date.parse(row.updatedAt) + windowMs;
    expect(after + retryAfter * 1000).toBeGreaterThanOrEqual(idleAt);
    expect(before + retryAfter * 1000).toBeLessThan(idleAt + 1000);
    expect(retryAfter).toBeLessThan(Math.floor((before - Date.parse(row.updatedAt)) / 1000));

    // And the retry sent as it asks (and past the window, should it have come back in the very millisecond) makes it.
    const retryAt = Math.max(after + retryAfter * 1000, idleAt + 1);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, retryAt - Date.now())));
    const retried = await postJson(`${svc.url}/refund`, body);
    expect(retried.status).toBe(200);
    const atStripe = await stripeRefundsOf(svc, body.payment_intent_id, body.request_id);
    expect(atStripe.map((r) => r.amount)).toEqual([1000]);
  }, 15_000);

  it('a queued refund asked for again through POST /refund: Retry-After 1 (the worker has it)', async () => {
    const { body } = await acceptedAgo(svc, 30_000, 'async');
    expect(retryAfterOf((await timedPost(body)).res)).toBe(1);
  });
});

/**
 * The same race made certain: a connection of the test's own holds the refund's row lock while the retries come, so
 * that each has read the row idle (the accept's reads take no lock on it) and waits at the write that begins the
 * attempt; then it lets them go, one after the other.
 */
describe.skipIf(!pgOk)(
  'retries that all read the refund idle before any begins an attempt (postgres)',
  () => {
    let svc: TestService;
    beforeAll(async () => {
      svc = await startTestService('postgres');
    });
    afterAll(async () => {
      await svc?.stop();
    });

    it('one of them begins an attempt and makes the refund; the others are told it is in progress', async () => {
      const { pi, body, row } = await acceptedAgo(svc, IDLE_FOR_MS);
      const [{ schema }] = (await svc.sql('SELECT current_schema() AS schema')) as [{ schema: string }];
      const holder = new pg.Client({ connectionString: POSTGRES_URL });
      await holder.connect();
      const retries = 3;
      let answers: Awaited<ReturnType<typeof postJson>>[];
      // Stripe takes a second to make it, so the retries that did not take it over find it still in progress.
      await svc.faults({ latency_ms: 1000, match: { method: 'POST', path_prefix: '/v1/refunds' } });
      try {
        await holder.query('BEGIN');
        const [{ xid }] = (
          await holder.query<{ xid: string }>(
            `SELECT txid_current()::text AS xid FROM "${schema}".refunds WHERE request_id = $1 FOR UPDATE`,
            [row.requestId],
          )
        ).rows as [{ xid: string }];
        const sent = Promise.all(Array.from({ length: retries }, () => postJson(`${svc.url}/refund`, body)));
        // Waiting for the lock: the first on the holder's transaction, the others on the row's tuple lock.
        const waiting = await eventually(
          async () =>
            Number(
              (
                await holder.query<{ n: string }>(
                  `SELECT count(DISTINCT pid) AS n FROM pg_locks WHERE NOT granted AND (
                   (locktype = 'transactionid' AND transactionid::text = $1) OR
                   (locktype = 'tuple' AND relation = $2::regclass))`,
                  [xid, `"${schema}".refunds`],
                )
              ).rows[0]!.n,
            ),
          (n) => n === retries,
        );
        expect(waiting).toBe(retries);
        await holder.query('COMMIT');
        answers = await sent;
      } finally {
        await holder.query('ROLLBACK').catch(() => undefined);
        await holder.end();
        await svc.faults({});
      }

      const atStripe = await stripeRefundsOf(svc, pi, body.request_id);
      expect(atStripe.map((r) => r.amount)).toEqual([1000]);
      expect(answers.map((a) => a.status).sort()).toEqual([200, ...Array<number>(retries - 1).fill(409)]);
      expect(answers.find((a) => a.status === 200)!.json.refund).toMatchObject({ id: atStripe[0]!.id });
      for (const a of answers.filter((x) => x.status === 409)) {
        expect(a.json).toMatchObject({ code: 'refund_in_progress', retry_after: 1 });
        expect(a.headers.get('retry-after')).toBe('1');
      }
      expect(await svc.deps.store.refunds.get(row.requestId)).toMatchObject({
        attempts: row.attempts + 1,
        stripeRefundId: atStripe[0]!.id,
        status: 'succeeded',
      });
    });
  },
);
