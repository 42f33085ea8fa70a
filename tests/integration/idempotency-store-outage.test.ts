/**
 * A request that took its Idempotency-Key and then lost the database answers 503 store_unavailable, which says
 * "retry with the same Idempotency-Key". The key must then be free for that retry once the database is back:
 * not held "in progress" for the ten minutes after which a key is taken to belong to a process that died.
 * The service frees it in the background for up to 9 minutes (after 10, a retry takes a key in progress over
 * anyway); those minutes are elapsed time, so a step of the wall clock forward while the database is away must
 * not end the tries. And a request whose work is done (money moved) answers what was done even when storing that
 * answer for replays fails; the answer is stored once the database takes it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { paidIntent, postJson } from '../helpers/http.js';
import {
  eventually,
  retryPaymentIntentUntilServed,
  startTestServiceBehindProxy,
  type TestService,
} from '../helpers/service.js';
import { postgresAvailable } from '../helpers/services.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';

const pgOk = await postgresAvailable();

/** A service on PostgreSQL reached through a proxy the test can silence. */
function behindProxy() {
  const held = {} as { proxy: TcpProxy; svc: TestService };
  beforeAll(async () => {
    Object.assign(
      held,
      await startTestServiceBehindProxy({
        DATABASE_POOL_SIZE: '3',
        DATABASE_TIMEOUT_MS: '400',
        STRIPE_MAX_NETWORK_RETRIES: '0',
      }),
    );
  });
  afterAll(async () => {
    // The proxy first: closing its sockets fails whatever still waits on one, so the service can close.
    await held.proxy?.close();
    await held.svc?.stop();
  });
  return held;
}

const PAYMENT = { amount: 2500, currency: 'usd', payment_method: 'pm_card_visa', confirm: true };

/**
 * A keyed POST /payment-intent cut off by the database going away after it took its key (Stripe takes its time
 * meanwhile): answered 503 store_unavailable. The database stays away (the proxy black-holed).
 */
async function cutOffAfterClaim(held: { proxy: TcpProxy; svc: TestService }, key: Record<string, string>) {
  const { proxy, svc } = held;
  await svc.faults({ latency_ms: 1_500, match: { method: 'POST', path_prefix: '/v1/payment_intents' } });
  const pending = postJson(`${svc.url}/payment-intent`, PAYMENT, key);
  const claimed = await eventually(
    () => svc.sql(`SELECT state FROM idempotency_keys`),
    (rows) => rows.length === 1,
    5_000,
  );
  expect(claimed).toEqual([{ state: 'in_progress' }]);
  proxy.blackHole();
  const first = await pending;
  expect(first.status).toBe(503);
  expect(first.json).toMatchObject({ code: 'store_unavailable' });
  await svc.faults({});
}

describe.skipIf(!pgOk)('Idempotency-Key of a request cut off by a database outage (PostgreSQL)', () => {
  const held = behindProxy();

  it('POST /payment-intent: the retry the 503 asks for gets the one intent Stripe made, within seconds', async () => {
    const { proxy, svc } = held;
    const key = { 'Idempotency-Key': `outage-${Date.now()}` };
    await cutOffAfterClaim(held, key);
    proxy.forward();

    // The client retries as told (Retry-After is a second or so). A few seconds of 409 while the service
    // catches up is fine; ten minutes of it is not.
    const retried = await retryPaymentIntentUntilServed(svc, PAYMENT, key);
    const replay = await postJson(`${svc.url}/payment-intent`, PAYMENT, key);
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.json.paymentIntentId).toBe(retried.json.paymentIntentId);
  });
});

describe.skipIf(!pgOk)(
  'Idempotency-Key freed after an outage during which the wall clock stepped (PostgreSQL)',
  () => {
    const held = behindProxy();
    afterEach(() => {
      vi.useRealTimers();
    });

    it('a wall-clock step during the outage: the retry the 503 asks for is not refused with 409', async () => {
      const key = { 'Idempotency-Key': `settle-step-${Date.now()}` };
      await cutOffAfterClaim(held, key);
      // While the database is away, the wall clock steps 9.5 minutes forward (only Date is faked, and it goes on
      // advancing with real time from there).
      vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
      vi.setSystemTime(Date.now() + 9.5 * 60_000);
      await new Promise((r) => setTimeout(r, 1_500));
      held.proxy.forward();

      await retryPaymentIntentUntilServed(held.svc, PAYMENT, key);
    });
  },
);

describe.skipIf(!pgOk)('Idempotency-Key whose answer cannot be stored (PostgreSQL)', () => {
  const held = behindProxy();

  it('POST /refund answers the refund Stripe made, and replays it once the database takes the answer', async () => {
    const { proxy, svc } = held;
    const pi = await paidIntent(svc.url, 4000);
    const key = { 'Idempotency-Key': `unstored-${Date.now()}` };
    const body = { payment_intent_id: pi, amount: 1500 };
    // Only the statement that stores the answer under the key is lost on the way (no other statement of the
    // service starts this way); every other one, the refund's own included, goes through.
    proxy.silenceConnectionsSending('update "idempotency_keys" set "state" = $1');
    const first = await postJson(`${svc.url}/refund`, body, key);
    expect(first.status).toBe(200);
    expect(first.json.refund).toMatchObject({ amount: 1500, status: 'succeeded' });
    const made = await svc.deps.stripe.refunds.list({ payment_intent: pi });
    expect(made.data.map((r) => r.id)).toEqual([(first.json.refund as { id: string }).id]);
    proxy.silenceConnectionsSending(null);

    const replay = await eventually(
      () => postJson(`${svc.url}/refund`, body, key),
      (r) => r.status !== 409,
      10_000,
    );
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.json).toEqual(first.json);
    expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data).toHaveLength(1);
  });
});

describe.skipIf(!pgOk)('Idempotency-Key claimed as the database connection dropped (PostgreSQL)', () => {
  const held = behindProxy();

  it('the retry the 503 asks for is served once the database is back, not refused as in progress', async () => {
    const { proxy, svc } = held;
    const keyValue = `lostclaim-${Date.now()}`;
    const key = { 'Idempotency-Key': keyValue };
    const body = { amount: 1900, currency: 'usd', payment_method: 'pm_card_visa', confirm: true };
    // The statement that claims the key reaches the database and commits; its answer is lost on the way back.
    proxy.loseAnswersTo(keyValue);
    const first = await postJson(`${svc.url}/payment-intent`, body, key);
    expect(first.status).toBe(503);
    expect(first.json).toMatchObject({ code: 'store_unavailable' });
    expect((await svc.deps.stripe.paymentIntents.list({ limit: 10 })).data).toEqual([]);
    proxy.loseAnswersTo(null);
    // The claim was written: left so, the key would read "in progress" (409) for the next ten minutes.

    await retryPaymentIntentUntilServed(svc, body, key);
  });
});
