/**
 * A request cut off by a database outage answers 503 store_unavailable and frees its Idempotency-Key as soon as
 * the database is back, trying in the background for up to 9 minutes (after 10, a retry takes a key in progress
 * over anyway). Those minutes are elapsed time: a step of the wall clock forward while the database is away must
 * not end the tries, leaving the key "in progress" and the retry the 503 asked for refused with 409 until the
 * claim goes stale.
 */
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { postJson } from '../helpers/http.js';
import {
  eventually,
  retryPaymentIntentUntilServed,
  startTestService,
  type TestService,
} from '../helpers/service.js';
import { POSTGRES_URL, postgresAvailable } from '../helpers/services.js';
import { proxyFor, type TcpProxy } from '../helpers/tcp-proxy.js';

const pgOk = await postgresAvailable();

let proxy: TcpProxy;
let svc: TestService;
beforeAll(async () => {
  if (!pgOk) return;
  const via = await proxyFor(POSTGRES_URL);
  proxy = via.proxy;
  svc = await startTestService('postgres', {
    DATABASE_URL: via.url,
    DATABASE_POOL_SIZE: '3',
    DATABASE_TIMEOUT_MS: '400',
    STRIPE_MAX_NETWORK_RETRIES: '0',
  });
});
afterEach(() => {
  vi.useRealTimers();
});
afterAll(async () => {
  // The proxy first: closing its sockets fails whatever still waits on one, so the service can close.
  await proxy?.close();
  await svc?.stop();
});

it.skipIf(!pgOk)(
  'a wall-clock step during the outage: the retry the 503 asks for is not refused with 409',
  async () => {
    const key = { 'Idempotency-Key': `settle-step-${Date.now()}` };
    const body = { amount: 2500, currency: 'usd', payment_method: 'pm_card_visa', confirm: true };
    await svc.faults({ latency_ms: 1_500, match: { method: 'POST', path_prefix: '/v1/payment_intents' } });
    const pending = postJson(`${svc.url}/payment-intent`, body, key);
    await eventually(
      () => svc.sql(`SELECT state FROM idempotency_keys`),
      (rows) => rows.length === 1,
      5_000,
    );
    proxy.blackHole();
    const first = await pending;
    expect(first.status).toBe(503);
    expect(first.json).toMatchObject({ code: 'store_unavailable' });
    await svc.faults({});
    // While the database is away, the wall clock steps 9.5 minutes forward (only Date is faked, and it goes on
    // advancing with real time from there).
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    vi.setSystemTime(Date.now() + 9.5 * 60_000);
    await new Promise((r) => setTimeout(r, 1_500));
    proxy.forward();

    await retryPaymentIntentUntilServed(svc, body, key);
  },
);
