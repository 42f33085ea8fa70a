/**
 * POST /payment-intent without an Idempotency-Key whose intent Stripe makes, and charges (confirm: true), but whose
 * ledger row cannot be written: the database went away during the Stripe call. The answer is a 503, but not
 * "retry later": the call's Stripe idempotency key was a fresh one, so the retry a Retry-After asks for (retrying
 * HTTP clients follow it by themselves) makes a second intent and charges the card a second time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../helpers/http.js';
import { startTestServiceBehindProxy, type TestService } from '../helpers/service.js';
import { postgresAvailable } from '../helpers/services.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('POST /payment-intent whose ledger write fails after Stripe made the intent', () => {
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

  /** `body` posted while the database is silent: nothing before the Stripe call needs it (API keys are off). */
  async function postWhileDatabaseAway(body: Record<string, unknown>) {
    proxy.blackHole();
    try {
      return await postJson(`${svc.url}/payment-intent`, body);
    } finally {
      proxy.forward();
    }
  }

  it('confirmed, without a key: 503 with no Retry-After, naming the intent Stripe charged', async () => {
    const res = await postWhileDatabaseAway({
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
    const res = await postWhileDatabaseAway({ amount: 2500, currency: 'usd' });
    expect(res.status).toBe(503);
    expect(res.json).toMatchObject({ code: 'store_unavailable', retry_after: 1 });
    expect(res.headers.get('retry-after')).toBe('1');
  });
});
