import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, request, startSandbox, stripeFor, TEST_KEY, type Sandbox } from './helpers/fixtures.js';

describe('sandbox authentication', () => {
  let open: Sandbox;
  let locked: Sandbox;
  const lockedKey = 'sk_test_onlyThisKeyWorks123456';

  beforeAll(async () => {
    open = await startSandbox();
    locked = await startSandbox({ secretKey: lockedKey });
  });
  afterAll(async () => {
    await open.close();
    await locked.close();
  });

  it('accepts any sk_test_ key by default and answers with a Request-Id', async () => {
    const list = await stripeFor(open).paymentIntents.list();
    expect(list.object).toBe('list');
    expect(list.lastResponse.requestId).toMatch(/^req_[A-Za-z0-9]+$/);
  });

  it('rejects a request without an API key with 401 invalid_request_error', async () => {
    const res = await request(open, 'GET', '/v1/payment_intents');
    expect(res.status).toBe(401);
    expect(res.headers.get('request-id')).toMatch(/^req_/);
    const error = (res.json as { error: { type: string; message: string } }).error;
    expect(error.type).toBe('invalid_request_error');
    expect(error.message).toContain('You did not provide an API key');
  });

  it('rejects live keys and garbage without echoing them', async () => {
    const liveKey = 'sk_live_abcdefghijklmnop1234';
    const err = await errorOf(() => stripeFor(open, { apiKey: liveKey }).paymentIntents.list());
    expect(err).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect(err.statusCode).toBe(401);
    expect(err.message).toBe('Invalid API Key provided: sk_live_****1234');
    expect(err.message).not.toContain('abcdefghijklmnop');

    const res = await request(open, 'GET', '/v1/charges', { headers: { Authorization: 'Bearer not-a-key' } });
    expect(res.status).toBe(401);
    expect(JSON.stringify(res.json)).not.toContain('not-a-key');
  });

  it('accepts only the configured secretKey when one is set', async () => {
    const ok = await stripeFor(locked, { apiKey: lockedKey }).refunds.list();
    expect(ok.data).toEqual([]);

    const wrong = 'sk_test_someOtherKeyabcdWXYZ';
    const err = await errorOf(() => stripeFor(locked, { apiKey: wrong }).refunds.list());
    expect(err.statusCode).toBe(401);
    expect(err.rawType).toBe('invalid_request_error');
    expect(err.message).toBe('Invalid API Key provided: sk_test_****WXYZ');
    const short = await errorOf(() => stripeFor(locked, { apiKey: 'sk_test_abcd' }).refunds.list());
    expect(short.message).toBe('Invalid API Key provided: sk_test_****');
  });

  it('accepts the key as the HTTP Basic user name, as Stripe does', async () => {
    const basic = Buffer.from(`${TEST_KEY}:`).toString('base64');
    const res = await request(open, 'GET', '/v1/events', { headers: { Authorization: `Basic ${basic}` } });
    expect(res.status).toBe(200);
    expect((res.json as { object: string }).object).toBe('list');
  });
});
