/**
 * Stripe refusing the service's own key (a mistyped, rolled or expired STRIPE_SECRET_KEY: 401) says nothing of
 * the refund, which Stripe did not look at. Such a refund used to be marked `failed` at once (failure_reason
 * `auth`, on both paths), so the refunds a shop asked for while the key was wrong were announced as failed, and
 * a retry of the same request after the key was fixed got 409 `refund_failed`. A refund is kept instead, its
 * amount reserved, and made once a process with the right key takes it up.
 *
 * Three processes on one PostgreSQL schema and one sandbox: one with the right key takes the payment, one with a
 * wrong key is asked for the refunds, and one started with the key fixed (as an operator would restart the
 * service) makes them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { getJson, postJson } from '../helpers/http.js';
import { postgresAvailable } from '../helpers/services.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

const RIGHT_KEY = 'sk_test_theKeyStripeKnows0000000001';
const WRONG_KEY = 'sk_test_aKeyStripeDoesNotKnow00001';

describe.skipIf(!(await postgresAvailable()))('Stripe refusing the service key on a refund', () => {
  let sandbox: Sandbox;
  let shop: TestService;
  let schema: string;
  const env = (key: string) => ({ STRIPE_SECRET_KEY: key, STRIPE_API_BASE: sandbox.url, API_AUTH: 'off' });

  beforeAll(async () => {
    sandbox = await startSandbox({ secretKey: RIGHT_KEY });
    shop = await startTestService('postgres', env(RIGHT_KEY));
    schema = (await shop.sql('select current_schema() as s'))[0]!['s'] as string;
  });
  afterAll(async () => {
    await shop?.stop();
    await sandbox?.close();
  });

  it('keeps the refund (not failed) on both paths, and it is made once, when the key is fixed', async () => {
    const paid = await postJson(`${shop.url}/payment-intent`, {
      amount: 5000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    expect(paid.status).toBe(200);
    const pi = paid.json.paymentIntentId as string;

    const wrong = await startTestService('postgres', env(WRONG_KEY), { storeSchema: schema });
    try {
      const now = await postJson(`${wrong.url}/refund`, {
        payment_intent_id: pi,
        amount: 1000,
        request_id: 'now-1',
      });
      expect(now.status).toBe(502);
      expect(now.json).toMatchObject({ code: 'upstream_authentication' });
      expect(now.json.detail).toMatch(/not this refund.*\/refund-status\/now-1/);
      expect(now.text).not.toContain(WRONG_KEY.slice(8));

      const later = await postJson(`${wrong.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 2000,
        request_id: 'later-1',
      });
      expect(later.status).toBe(202);
      // The worker's tries (200, 400 and 800 ms apart) all meet the wrong key; none fails the refund.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      for (const id of ['now-1', 'later-1']) {
        const status = await getJson(`${wrong.url}/refund-status/${id}`);
        expect(status.json).toMatchObject({ status: 'processing', refund_id: null, failure_reason: null });
      }
      // The amounts stay reserved: 3000 of 5000 are spoken for, so 2001 more is refused.
      const over = await postJson(`${shop.url}/refund`, { payment_intent_id: pi, amount: 2001 });
      expect(over.status).toBe(409);
      expect(over.json.code).toBe('amount_exceeds_refundable');
    } finally {
      await wrong.stop();
    }

    const fixed = await startTestService('postgres', env(RIGHT_KEY), { storeSchema: schema });
    try {
      for (const [id, amount] of [
        ['now-1', 1000],
        ['later-1', 2000],
      ] as const) {
        const done = await eventually(
          () => getJson(`${fixed.url}/refund-status/${id}`),
          (r) => r.json.status === 'succeeded',
        );
        expect(done.json).toMatchObject({ status: 'succeeded', amount, failure_reason: null });
      }
      const atStripe = await fixed.deps.stripe.refunds.list({ payment_intent: pi, limit: 100 });
      expect(atStripe.data.map((r) => r.amount).sort()).toEqual([1000, 2000]);
    } finally {
      await fixed.stop();
    }
  });
});
