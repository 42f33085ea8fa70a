import Stripe from 'stripe';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { control, errorOf, startSandbox, stripeFor, type Sandbox } from './helpers/fixtures.js';

describe('fault injection', () => {
  let sandbox: Sandbox;
  let stripe: Stripe;

  beforeAll(async () => {
    sandbox = await startSandbox();
    stripe = stripeFor(sandbox);
  });
  beforeEach(() => sandbox.reset());
  afterAll(() => sandbox.close());

  it('error_rate: the SDK sees a 500 api_error and nothing is stored or created', async () => {
    expect((await control(sandbox, 'POST', '/faults', { error_rate: 1 })).status).toBe(200);
    const err = await errorOf(() =>
      stripe.paymentIntents.create({ amount: 500, currency: 'usd' }, { idempotencyKey: 'e-1' }),
    );
    expect(err).toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect(err.statusCode).toBe(500);
    expect(err.rawType).toBe('api_error');
    await control(sandbox, 'DELETE', '/faults');
    // Not stored: the same key now executes for real.
    const intent = await stripe.paymentIntents.create(
      { amount: 500, currency: 'usd' },
      { idempotencyKey: 'e-1' },
    );
    expect(intent.lastResponse.headers['idempotent-replayed']).toBeUndefined();
    expect((await stripe.paymentIntents.list()).data).toHaveLength(1);
  });

  it('the SDK retries injected 500s when allowed to', async () => {
    await control(sandbox, 'POST', '/faults', { error_rate: 1, match: { method: 'POST' } });
    const retrying = stripeFor(sandbox, { maxNetworkRetries: 2 });
    const err = await errorOf(() => retrying.paymentIntents.create({ amount: 500, currency: 'usd' }));
    expect(err.statusCode).toBe(500);
    const attempts = sandbox.capturedRequests().filter((r) => r.method === 'POST');
    expect(attempts).toHaveLength(3);
    expect(new Set(attempts.map((r) => r.idempotencyKey)).size).toBe(1);
  });

  it('rate_limit_rate: the SDK sees 429 as StripeRateLimitError', async () => {
    await control(sandbox, 'POST', '/faults', { rate_limit_rate: 1 });
    const err = await errorOf(() => stripe.refunds.list());
    expect(err).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    expect(err.statusCode).toBe(429);
    expect(err.code).toBe('rate_limit');
  });

  it('permission_error_rate: 403 permission_error (StripePermissionError) for the matched endpoint only', async () => {
    await control(sandbox, 'POST', '/faults', {
      permission_error_rate: 1,
      match: { method: 'POST', path_prefix: '/v1/payment_intents' },
    });
    const err = await errorOf(() => stripe.paymentIntents.create({ amount: 500, currency: 'usd' }));
    expect(err).toBeInstanceOf(Stripe.errors.StripePermissionError);
    expect(err.statusCode).toBe(403);
    // Reads still answer, as for a restricted key that may read but not write.
    expect((await stripe.paymentIntents.list()).data).toHaveLength(0);
  });

  it('lock_timeout_rate: 429 lock_timeout with Stripe-Should-Retry: true, which the SDK retries', async () => {
    await control(sandbox, 'POST', '/faults', { lock_timeout_rate: 1, match: { method: 'POST' } });
    const retrying = stripeFor(sandbox, { maxNetworkRetries: 2 });
    const err = await errorOf(() => retrying.paymentIntents.create({ amount: 500, currency: 'usd' }));
    expect(err).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    expect(err).toMatchObject({ statusCode: 429, code: 'lock_timeout' });
    expect(err.headers?.['stripe-should-retry']).toBe('true');
    // Unlike rate_limit's 429, which the SDK gives up on at once, this one is tried three times.
    const attempts = sandbox.capturedRequests().filter((r) => r.method === 'POST');
    expect(attempts).toHaveLength(3);
    expect(new Set(attempts.map((r) => r.idempotencyKey)).size).toBe(1);
  });

  it('rate_limit_rps: requests above the rate in one second get 429', async () => {
    await control(sandbox, 'POST', '/faults', { rate_limit_rps: 3, match: { path_prefix: '/v1/events' } });
    const firstSecond = Math.floor(Date.now() / 1000);
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => stripe.events.list()));
    // The limit is per wall-clock second, so the burst may straddle a boundary or two.
    const windows = Math.floor(Date.now() / 1000) - firstSecond + 1;
    const limited = results.filter(
      (r) => r.status === 'rejected' && (r.reason as Stripe.errors.StripeError).statusCode === 429,
    );
    const passed = results.filter((r) => r.status === 'fulfilled');
    expect(passed.length).toBeGreaterThanOrEqual(1);
    expect(passed.length).toBeLessThanOrEqual(3 * windows);
    expect(limited.length).toBe(12 - passed.length);
    // Other paths are not affected.
    expect((await stripe.charges.list()).object).toBe('list');
  });

  it('latency_ms holds matching requests back without changing their result', async () => {
    await control(sandbox, 'POST', '/faults', {
      latency_ms: 1500,
      match: { method: 'GET', path_prefix: '/v1/payment_intents' },
    });
    const order: string[] = [];
    const slow = stripe.paymentIntents.list().then((list) => {
      order.push('delayed');
      return list;
    });
    const fast = stripe.charges.list().then((list) => {
      order.push('undelayed');
      return list;
    });
    const [slowList, fastList] = await Promise.all([slow, fast]);
    expect(slowList.object).toBe('list');
    expect(fastList.object).toBe('list');
    expect(order).toEqual(['undelayed', 'delayed']);
  });

  it('drop_rate: the request is processed, the socket is cut, and a retry with the same key gets the stored result', async () => {
    await control(sandbox, 'POST', '/faults', {
      drop_rate: 1,
      match: { method: 'POST', path_prefix: '/v1/payment_intents' },
    });
    const params = {
      amount: 4200,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' as const },
    };
    const err = await errorOf(() => stripe.paymentIntents.create(params, { idempotencyKey: 'drop-1' }));
    expect(err).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    // The work happened anyway (the SDK even retried the closed connection once, also dropped).
    const created = (await stripe.paymentIntents.list()).data;
    expect(created).toHaveLength(1);
    expect(created[0]?.status).toBe('succeeded');

    await control(sandbox, 'DELETE', '/faults');
    const retried = await stripe.paymentIntents.create(params, { idempotencyKey: 'drop-1' });
    expect(retried.id).toBe(created[0]?.id);
    expect(retried.lastResponse.headers['idempotent-replayed']).toBe('true');
    expect((await stripe.charges.list()).data).toHaveLength(1);
  });

  it('GET shows, DELETE clears and reset clears faults; bad control input gets 400', async () => {
    await control(sandbox, 'POST', '/faults', { error_rate: 0.5, latency_ms: 5, match: { method: 'post' } });
    const shown = await control(sandbox, 'GET', '/faults');
    expect(shown.json).toEqual({ error_rate: 0.5, latency_ms: 5, match: { method: 'POST' } });
    await control(sandbox, 'DELETE', '/faults');
    expect((await control(sandbox, 'GET', '/faults')).json).toEqual({});

    await control(sandbox, 'POST', '/faults', { error_rate: 1 });
    expect((await control(sandbox, 'POST', '/reset')).status).toBe(200);
    expect((await stripe.paymentIntents.list()).object).toBe('list');

    for (const bad of [
      { error_rate: 2 },
      { drop_rate: -1 },
      { latency_ms: 'slow' },
      { nonsense: 1 },
      [],
      { match: 3 },
    ]) {
      const res = await control(sandbox, 'POST', '/faults', bad);
      expect(res.status).toBe(400);
      expect((res.json as { error: { message: string } }).error.message).toBeTruthy();
    }
    const notJson = await fetch(`${sandbox.url}/_sandbox/faults`, { method: 'POST', body: '{oops' });
    expect(notJson.status).toBe(400);
    expect((await control(sandbox, 'GET', '/nothing-here')).status).toBe(404);
  });

  it('reset clears objects and events', async () => {
    await stripe.paymentIntents.create({ amount: 500, currency: 'usd' });
    expect((await stripe.events.list()).data).toHaveLength(1);
    await control(sandbox, 'POST', '/reset');
    expect((await stripe.paymentIntents.list()).data).toEqual([]);
    expect((await stripe.events.list()).data).toEqual([]);
  });
});
