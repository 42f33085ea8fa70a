/**
 * A request the timeout answered before its handler started is not run.
 *
 * Under load a request can wait past REQUEST_TIMEOUT_MS before its handler starts (its API key lookup queued
 * behind a busy or slow database pool). The timeout answered it 503 "Retry later", and then the handler ran
 * anyway: a POST /payment-intent with `confirm: true` charged the card after its client had been told to retry,
 * and a retry without an Idempotency-Key charged it again. Under overload every such late handler is also work
 * nobody waits for, taken from the requests that still can be answered.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { startTestServiceBehindProxy, type TestService } from '../helpers/service.js';
import { postgresAvailable } from '../helpers/services.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';

const pgOk = await postgresAvailable();
let svc: TestService;
let proxy: TcpProxy;
let key: string;

beforeAll(async () => {
  if (!pgOk) return;
  ({ proxy, svc } = await startTestServiceBehindProxy({
    API_AUTH: 'on',
    RATE_LIMIT_PER_MINUTE: '0',
    REQUEST_TIMEOUT_MS: '1000',
    // One place: a request counted after its answer went out would hold it for good (below).
    MAX_CONCURRENT_REQUESTS: '1',
  }));
  key = (await createKey(svc.deps.store.apiKeys, { owner: 'late', kind: 'secret' })).key;
});
afterAll(async () => {
  proxy?.delayClientBytes(0);
  await svc?.stop();
  await proxy?.close();
});

describe.skipIf(!pgOk)('a request answered by the timeout before its handler started', () => {
  it('is answered 503 timeout and never reaches Stripe', async () => {
    const before = (await svc.deps.stripe.paymentIntents.list({ limit: 100 })).data.length;
    proxy.delayClientBytes(1500);
    const res = await fetch(`${svc.url}/payment-intent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true }),
    });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe('timeout');
    // The key lookup answers 0.5 s after the timeout; the handler would have run by then.
    await new Promise((r) => setTimeout(r, 2500));
    proxy.delayClientBytes(0);
    const after = (await svc.deps.stripe.paymentIntents.list({ limit: 100 })).data.length;
    expect(after).toBe(before);
    // The key is looked up before the cap on requests at work counts the request: answered by then, it is not
    // counted, and the one place is free for the next request (its 'close' already past, it was never given back).
    const next = await fetch(`${svc.url}/refund-status/nope`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(next.status).toBe(404);
  });
});
