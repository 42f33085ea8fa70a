/**
 * Stripe saves a 500 that happened once an endpoint began executing and replays it to every retry with the
 * same Idempotency-Key (https://docs.stripe.com/api/idempotent_requests: "Retries with the same key return
 * the saved response, including `500` errors."). The sandbox's `execution_error_rate` fault does the same.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

describe('a Stripe 500 saved under the refund idempotency key', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('sqlite');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  // A replayed 500 (Idempotent-Replayed: true) means nothing more will happen under that key: the worker looks
  // for the refund at Stripe and, as it is not there, asks again under the key's next generation.
  it('the refund still completes once Stripe is healthy again', async () => {
    const paid = await postJson(`${svc.url}/payment-intent`, {
      amount: 4000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    expect(paid.status).toBe(200);
    const pi = paid.json.paymentIntentId as string;
    await svc.faults({ execution_error_rate: 1, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    const res = await postJson(`${svc.url}/refund`, {
      payment_intent_id: pi,
      amount: 2500,
      request_id: 'cached-500',
    });
    expect(res.status).toBe(503);
    await svc.faults({});
    const settled = await eventually(
      () => getJson(`${svc.url}/refund-status/cached-500`),
      (r) => r.json.status === 'succeeded' || r.json.status === 'failed',
    );
    expect(settled.json).toMatchObject({ status: 'succeeded', amount: 2500 });
    const refunds = (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data;
    expect(refunds).toHaveLength(1);
  });
});

/**
 * Stripe's 500 saved under a key says so from its first answer on (Stripe-Should-Retry: false), and the SDK makes
 * no retry that would turn it into a replay (Idempotent-Replayed: true). A worker attempt that meets it under a key
 * it may move on from (an earlier attempt's, which never reached Stripe's idempotency layer) moves on to the next
 * key in the same attempt, as it does for a replay, rather than spend the attempt on a key that cannot succeed.
 */
describe('a fresh saved 500 under a refund key an earlier attempt did not get saved', () => {
  let svc: TestService;
  let restore: (() => void) | undefined;
  beforeAll(async () => {
    // Two attempts: on the old code the second was spent on the saved 500, and the refund failed.
    svc = await startTestService('sqlite', { WORKER_MAX_ATTEMPTS: '2' });
  });
  afterEach(() => {
    restore?.();
    restore = undefined;
  });
  afterAll(async () => {
    await svc?.stop();
  });

  /**
   * Sets the sandbox's faults for each of the service's refunds.create calls in turn (the real SDK call then runs
   * unchanged): `plan[i]` for the i-th call, none after the last.
   */
  function faultsPerCreateCall(plan: Record<string, unknown>[]): void {
    const refunds = svc.deps.stripe.refunds;
    const create = refunds.create.bind(refunds);
    let calls = 0;
    refunds.create = (async (...args: Parameters<typeof create>) => {
      const faults = plan[calls++];
      await svc.faults(
        faults === undefined ? {} : { ...faults, match: { method: 'POST', path_prefix: '/v1/refunds' } },
      );
      return create(...args);
    }) as typeof refunds.create;
    restore = () => {
      refunds.create = create as typeof refunds.create;
    };
  }

  it('moves on to the next key within the attempt, and the refund is made once', async () => {
    const paid = await postJson(`${svc.url}/payment-intent`, {
      amount: 5000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    expect(paid.status).toBe(200);
    const pi = paid.json.paymentIntentId as string;
    faultsPerCreateCall([
      // Attempt 1, key generation 0: a 500 in front of Stripe's idempotency layer, saved nowhere.
      { error_rate: 1 },
      // Attempt 2, generation 0 again: now the endpoint runs and fails, and Stripe saves that 500 under the key.
      { execution_error_rate: 1 },
      // Generation 1 (same attempt, with the fix): Stripe is healthy.
    ]);
    const res = await postJson(`${svc.url}/refund-async`, {
      payment_intent_id: pi,
      amount: 1500,
      request_id: 'fresh-saved-500',
    });
    expect(res.status).toBe(202);
    const settled = await eventually(
      () => getJson(`${svc.url}/refund-status/fresh-saved-500`),
      (r) => r.json.status === 'succeeded' || r.json.status === 'failed',
      15_000,
    );
    await svc.faults({});
    expect(settled.json).toMatchObject({ status: 'succeeded', amount: 1500 });
    const refunds = (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data;
    expect(refunds.map((r) => r.amount)).toEqual([1500]);
  });
});
