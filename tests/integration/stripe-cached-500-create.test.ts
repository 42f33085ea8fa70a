/**
 * A create call (POST /payment-intent, POST /create-checkout-session) with an Idempotency-Key, whose Stripe
 * request (under a key derived from the client's) fails with a 500 that Stripe saves under that key. Stripe
 * marks such a 500 `Stripe-Should-Retry: false` from its first answer on, so the SDK makes no retry of its own
 * and the service sees the fresh 500, not yet a replay (Idempotent-Replayed: true). Every retry with the key
 * gets the same 500 back: the first answer must already say so (502 upstream_error_saved), not "retry later
 * with the same Idempotency-Key" (503), which sent the client into the 502 on its retry.
 *
 * The SDK's own retries are on (the default), as they are in production.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite');
});
afterAll(async () => {
  await svc?.stop();
});

/** Fails every create at `path_prefix` once Stripe's endpoint has begun: saved under the request's key. */
const savedFailure = (path_prefix: string) => ({
  execution_error_rate: 1,
  match: { method: 'POST', path_prefix },
});

function expectSaved(res: Awaited<ReturnType<typeof postJson>>): void {
  expect(res.status).toBe(502);
  expect(res.json).toMatchObject({ code: 'upstream_error_saved' });
  expect(res.headers.get('retry-after')).toBeNull();
  expect(res.json.retry_after).toBeUndefined();
  const detail = String(res.json.detail);
  // Not "retry later": a retry with this key cannot succeed. But Stripe failed while at it: check first.
  expect(detail).not.toMatch(/Retry later/);
  expect(detail).toMatch(/retrying with it cannot succeed/);
  expect(detail).toMatch(/may have made the object all the same/);
}

describe('POST /payment-intent whose Stripe request fails with a 500 Stripe saves under its key', () => {
  it('is answered 502 upstream_error_saved at once, and so is the retry with the key; a new key makes the intent', async () => {
    const body = {
      amount: 3100,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
      metadata: { order: 'fresh-saved-500' },
    };
    const key = { 'Idempotency-Key': 'pi-fresh-saved-500' };
    await svc.faults(savedFailure('/v1/payment_intents'));
    let first: Awaited<ReturnType<typeof postJson>>;
    try {
      first = await postJson(`${svc.url}/payment-intent`, body, key);
    } finally {
      await svc.faults({});
    }
    expectSaved(first);
    // Stripe is healthy again, but not for this key: the retry the first answer would have invited gets the
    // same 502 (the service's own key record was freed by the 5xx; Stripe's replays the saved 500).
    const retry = await postJson(`${svc.url}/payment-intent`, body, key);
    expectSaved(retry);
    const fresh = await postJson(`${svc.url}/payment-intent`, body, {
      'Idempotency-Key': 'pi-fresh-saved-500-b',
    });
    expect(fresh.status).toBe(200);
    const all = await svc.deps.stripe.paymentIntents.list({ limit: 100 });
    const made = all.data.filter((pi) => pi.metadata?.order === 'fresh-saved-500');
    expect(made.map((pi) => pi.id)).toEqual([fresh.json.paymentIntentId]);
  });

  it('a 500 Stripe did not save (before its endpoint ran) is still "retry later with the same key" (503)', async () => {
    const body = { amount: 3200, currency: 'usd', metadata: { order: 'unsaved-500' } };
    const key = { 'Idempotency-Key': 'pi-unsaved-500' };
    await svc.faults({ error_rate: 1, match: { method: 'POST', path_prefix: '/v1/payment_intents' } });
    let first: Awaited<ReturnType<typeof postJson>>;
    try {
      first = await postJson(`${svc.url}/payment-intent`, body, key);
    } finally {
      await svc.faults({});
    }
    expect(first.status).toBe(503);
    expect(first.json).toMatchObject({ code: 'upstream_unavailable' });
    expect(first.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(String(first.json.detail)).toMatch(/Retry later with the same Idempotency-Key/);
    const retry = await postJson(`${svc.url}/payment-intent`, body, key);
    expect(retry.status).toBe(200);
  });

  it('without an Idempotency-Key the same saved 500 is still the 503 that says a retry may make a second one', async () => {
    const body = { amount: 3300, currency: 'usd', metadata: { order: 'unkeyed-saved-500' } };
    await svc.faults(savedFailure('/v1/payment_intents'));
    let first: Awaited<ReturnType<typeof postJson>>;
    try {
      first = await postJson(`${svc.url}/payment-intent`, body);
    } finally {
      await svc.faults({});
    }
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).toBeNull();
    expect(String(first.json.detail)).toMatch(/no Idempotency-Key, so a retry may make a second one/);
  });
});

describe('POST /create-checkout-session whose Stripe request fails with a 500 Stripe saves under its key', () => {
  it('is answered 502 upstream_error_saved at once, and so is the retry with the key', async () => {
    const body = {
      line_items: [
        {
          price_data: { currency: 'usd', product_data: { name: 'Saved-500 mug' }, unit_amount: 1700 },
          quantity: 1,
        },
      ],
      success_url: 'https://shop.example/ok',
      cancel_url: 'https://shop.example/cancel',
      metadata: { order: 'checkout-fresh-saved-500' },
    };
    const key = { 'Idempotency-Key': 'cs-fresh-saved-500' };
    await svc.faults(savedFailure('/v1/checkout/sessions'));
    let first: Awaited<ReturnType<typeof postJson>>;
    try {
      first = await postJson(`${svc.url}/create-checkout-session`, body, key);
    } finally {
      await svc.faults({});
    }
    expectSaved(first);
    expectSaved(await postJson(`${svc.url}/create-checkout-session`, body, key));
    const sessions = (await svc.deps.stripe.checkout.sessions.list({ limit: 100 })).data.filter(
      (s) => s.metadata?.order === 'checkout-fresh-saved-500',
    );
    expect(sessions).toEqual([]);
  });
});
