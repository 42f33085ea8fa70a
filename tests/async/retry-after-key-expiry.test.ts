/**
 * "every Stripe call carries an idempotency key, so a retry or a crash replays Stripe's answer".
 * Stripe keeps idempotency keys for 24 hours. A retry of a refund whose earlier call reached Stripe (its
 * answer lost), made more than 24 h later (workers or the database down that long, then the message
 * redelivered or the stuck-refund sweep), must not refund a second time.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let sandbox: Sandbox;
beforeAll(async () => {
  // A Stripe whose webhooks do not reach the service (not configured, or lost in the same outage).
  sandbox = await startSandbox({ secretKey: 'sk_test_keyexpiry' });
  svc = await startTestService('sqlite', {
    STRIPE_SECRET_KEY: 'sk_test_keyexpiry',
    STRIPE_API_BASE: sandbox.url,
    API_AUTH: 'off',
    STRIPE_MAX_NETWORK_RETRIES: '0',
    WORKER_RETRY_DELAYS_MS: '1500',
  });
});
afterEach(() => {
  vi.useRealTimers();
});
afterAll(async () => {
  await svc?.stop();
  await sandbox?.close();
});

async function faults(config: Record<string, unknown>) {
  const empty = Object.keys(config).length === 0;
  const res = await fetch(`${sandbox.url}/_sandbox/faults`, {
    method: empty ? 'DELETE' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: empty ? undefined : JSON.stringify(config),
  });
  expect(res.status).toBeLessThan(300);
}

describe('a refund retried after Stripe forgot its idempotency key', () => {
  it('is not made twice', async () => {
    const pi = await paidIntent(svc.url, 5000);
    // Stripe makes the refund, then the connection drops before the answer arrives.
    await faults({ drop_rate: 1, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    const res = await postJson(`${svc.url}/refund-async`, {
      payment_intent_id: pi,
      amount: 1000,
      request_id: 'key-expiry',
    });
    expect(res.status).toBe(202);
    // The worker's first attempt has failed (its answer lost) and its retry waits in the delay queue.
    await eventually(
      async () => svc.lines.some((l) => l.includes('refund attempt failed; will retry')),
      (seen) => seen,
    );
    expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data).toHaveLength(1);
    await faults({});
    // Meanwhile 25 hours pass (only the clock moves).
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 25 * 3_600_000);
    const done = await eventually(
      () => getJson(`${svc.url}/refund-status/key-expiry`),
      (r) => r.json.status === 'succeeded' || r.json.status === 'failed',
    );
    expect(done.json.status).toBe('succeeded');
    const refunds = (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data;
    expect(refunds.map((r) => r.amount)).toEqual([1000]);
    expect(done.json.refund_id).toBe(refunds[0]!.id);
  });
});
