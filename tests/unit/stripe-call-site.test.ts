import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import { withoutCallSite } from '../../src/stripe/client.js';
import { startSandbox, stripeFor, type Sandbox } from '../sandbox/helpers/fixtures.js';

describe('withoutCallSite (SDK calls without the per-request call-site stack)', () => {
  let sandbox: Sandbox;
  let stripe: Stripe;
  const limit = Error.stackTraceLimit;

  beforeAll(async () => {
    sandbox = await startSandbox({ port: 0 });
    stripe = stripeFor(sandbox);
  });
  afterAll(async () => {
    await sandbox.close();
  });

  it('returns what the SDK returns and leaves the stack limit as it was', async () => {
    const created = await withoutCallSite(() =>
      stripe.paymentIntents.create({
        amount: 1234,
        currency: 'usd',
        automatic_payment_methods: { enabled: true },
      }),
    );
    expect(Error.stackTraceLimit).toBe(limit);
    const again = await withoutCallSite(() => stripe.paymentIntents.retrieve(created.id));
    expect(again).toMatchObject({ id: created.id, amount: 1234, currency: 'usd' });
    expect(new Error('after').stack?.split('\n').length).toBeGreaterThan(1);
  });

  it("keeps Stripe's error (type, code, message) when the call fails", async () => {
    const failed = withoutCallSite(() => stripe.paymentIntents.retrieve('pi_doesnotexist'));
    expect(Error.stackTraceLimit).toBe(limit);
    const err = await failed.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err).toMatchObject({ code: 'resource_missing', statusCode: 404 });
    expect((err as Error).message).toMatch(/pi_doesnotexist/);
  });

  it('captures no stack frames while the SDK sets the request up', async () => {
    let during = -1;
    const value = await withoutCallSite(() => {
      during = Error.stackTraceLimit;
      return Promise.resolve(new Error('set-up').stack);
    });
    expect(during).toBe(0);
    expect(value).toBe('Error: set-up');
    expect(Error.stackTraceLimit).toBe(limit);
  });

  it('restores the stack limit when the call throws before it returns a promise', () => {
    expect(() =>
      withoutCallSite(() => {
        throw new TypeError('bad call');
      }),
    ).toThrow('bad call');
    expect(Error.stackTraceLimit).toBe(limit);
  });
});
