/**
 * Behaviours Stripe documents that the service depends on, each with the page that states it.
 * A sandbox kinder than Stripe lets the service's tests pass while production breaks.
 */
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { control, errorOf, paidIntent, startSandbox, stripeFor, type Sandbox } from './helpers/fixtures.js';

describe('Stripe documented behaviour', () => {
  let sandbox: Sandbox;
  let stripe: Stripe;

  beforeAll(async () => {
    sandbox = await startSandbox({ refundSettleDelayMs: 60_000 });
    stripe = stripeFor(sandbox);
  });
  afterAll(() => sandbox.close());

  // https://docs.stripe.com/testing#refunds — "Asynchronous failure 4000000000005126: The charge succeeds.
  // If you initiate a refund, its status begins as `succeeded`. Some time later, its status transitions to
  // `failed` and sends a `charge.refund.updated` webhook event."
  it('pm_card_refundFail: a refund begins as succeeded, then moves to failed', async () => {
    const intent = await paidIntent(stripe, 2000, 'pm_card_refundFail');
    const refund = await stripe.refunds.create({ payment_intent: intent.id, amount: 2000 });
    expect(refund.status).toBe('succeeded');
    expect((await stripe.refunds.retrieve(refund.id)).status).toBe('succeeded');

    const settled = await control(sandbox, 'POST', `/refunds/${refund.id}/settle`);
    expect(settled.status).toBe(200);
    const failed = await stripe.refunds.retrieve(refund.id);
    expect(failed.status).toBe('failed');
    const events = (await stripe.events.list({ limit: 3 })).data;
    expect(events.map((e) => e.type)).toEqual(['charge.refund.updated', 'refund.updated', 'refund.failed']);
    expect(events[0]?.data.previous_attributes).toEqual({ status: 'succeeded' });
    const charge = await stripe.charges.retrieve(intent.latest_charge as string);
    expect(charge.amount_refunded).toBe(0);
    // Settled once only.
    expect((await control(sandbox, 'POST', `/refunds/${refund.id}/settle`)).status).toBe(400);
  });

  // Same page: "With all other test cards, refunds succeed immediately and don't change status after that."
  it('a pm_card_visa refund succeeds at once and cannot be settled', async () => {
    const intent = await paidIntent(stripe, 2000, 'pm_card_visa');
    const refund = await stripe.refunds.create({ payment_intent: intent.id });
    expect(refund.status).toBe('succeeded');
    expect((await control(sandbox, 'POST', `/refunds/${refund.id}/settle`)).status).toBe(400);
  });

  // https://docs.stripe.com/api/idempotent_requests — "Stripe saves the status code and body of the first
  // request made with a given idempotency key after endpoint execution begins. Retries with the same key
  // return the saved response, including `500` errors."
  it('a 500 from an executing endpoint is saved under the key and replayed to retries', async () => {
    await control(sandbox, 'POST', '/faults', { execution_error_rate: 1, match: { method: 'POST' } });
    const intent = await paidIntent(stripe, 1500, 'pm_card_visa').catch(() => undefined);
    expect(intent).toBeUndefined();
    const first = await errorOf(() =>
      stripe.paymentIntents.create({ amount: 500, currency: 'usd' }, { idempotencyKey: 'exec-500' }),
    );
    expect(first).toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect(first.statusCode).toBe(500);
    await control(sandbox, 'DELETE', '/faults');
    const again = await errorOf(() =>
      stripe.paymentIntents.create({ amount: 500, currency: 'usd' }, { idempotencyKey: 'exec-500' }),
    );
    expect(again.statusCode).toBe(500);
    expect(again.headers?.['idempotent-replayed']).toBe('true');
    // Nothing was made; a fresh key executes.
    const fresh = await stripe.paymentIntents.create(
      { amount: 500, currency: 'usd' },
      { idempotencyKey: 'exec-ok' },
    );
    expect(fresh.status).toBe('requires_payment_method');
  });

  // Such a 500 is answered with `Stripe-Should-Retry: false`, which the SDK obeys: stripe-node's own retry rule
  // (RequestSender._shouldRetry) says "we expect the stripe-should-retry header to be false in most cases when a
  // 500 is returned, since our idempotency framework would typically replay it anyway", and Stripe's SDK team moved
  // the "is a retry worth it" decision for 500s into that header (github.com/stripe/stripe-go/pull/1829). So the
  // SDK's own retries do not turn the first 500 into a replayed one: the caller sees the fresh 500 first, and
  // learns only from its own later retry under the key that the error was saved.
  it('a saved 500 says Stripe-Should-Retry: false, so the SDK does not retry it', async () => {
    const retrying = stripeFor(sandbox, { maxNetworkRetries: 2 });
    await control(sandbox, 'POST', '/faults', { execution_error_rate: 1, match: { method: 'POST' } });
    const first = await errorOf(() =>
      retrying.paymentIntents.create({ amount: 700, currency: 'usd' }, { idempotencyKey: 'exec-500-sdk' }),
    );
    await control(sandbox, 'DELETE', '/faults');
    expect(first.statusCode).toBe(500);
    expect(first.headers?.['stripe-should-retry']).toBe('false');
    expect(first.headers?.['idempotent-replayed']).toBeUndefined();
    // Its replay says the same: retrying it cannot help either.
    const replayed = await errorOf(() =>
      retrying.paymentIntents.create({ amount: 700, currency: 'usd' }, { idempotencyKey: 'exec-500-sdk' }),
    );
    expect(replayed.statusCode).toBe(500);
    expect(replayed.headers?.['idempotent-replayed']).toBe('true');
    expect(replayed.headers?.['stripe-should-retry']).toBe('false');
  });

  // A 500 before the endpoint ran is not saved: a retry with the key executes, so the SDK's retry is worth making.
  it('an unsaved 500 leaves the SDK to retry it, and the retry executes', async () => {
    const retrying = stripeFor(sandbox, { maxNetworkRetries: 2 });
    await control(sandbox, 'POST', '/faults', { error_rate: 1, match: { method: 'POST' } });
    const first = await errorOf(() =>
      retrying.paymentIntents.create({ amount: 800, currency: 'usd' }, { idempotencyKey: 'pre-500-sdk' }),
    );
    await control(sandbox, 'DELETE', '/faults');
    expect(first.statusCode).toBe(500);
    expect(first.headers?.['stripe-should-retry']).toBeUndefined();
    const made = await retrying.paymentIntents.create(
      { amount: 800, currency: 'usd' },
      { idempotencyKey: 'pre-500-sdk' },
    );
    expect(made.amount).toBe(800);
  });
});
