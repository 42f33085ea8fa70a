/**
 * A refund's `updated_at` (GET /refund-status) is "when the refund last changed". On PostgreSQL, the writes of a
 * refund in flight (accepted to the queue, an attempt begun) are stamped no earlier than PostgreSQL's clock, for the
 * stuck-refund sweep; the writes that settle it (Stripe's answer, a refusal, a webhook) by this process's clock
 * alone. With this process's clock behind PostgreSQL's (another host, NTP not yet caught up), a refund that moved
 * from `processing` to `succeeded` showed an `updated_at` earlier than the one it showed while processing: the
 * later change dated before the earlier one, by the skew.
 */
import { randomBytes } from 'node:crypto';
import type Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { gateRefundCreate } from '../helpers/stripe-gate.js';
import { postgresAvailable } from '../helpers/services.js';

const pgOk = await postgresAvailable();

let svc: TestService;
beforeAll(async () => {
  if (!pgOk) return;
  svc = await startTestService('postgres', { API_AUTH: 'off', STRIPE_MAX_NETWORK_RETRIES: '0' });
});
afterEach(() => {
  vi.useRealTimers();
});
afterAll(async () => {
  await svc?.stop();
});

it.skipIf(!pgOk)(
  "a queued refund's updated_at never goes back when this process's clock is behind PostgreSQL's",
  async () => {
    const pi = await paidIntent(svc.url, 5000);
    const requestId = `clocks-${randomBytes(4).toString('hex')}`;
    const gate = gateRefundCreate(svc.deps.stripe);
    try {
      // This process's clock two minutes behind PostgreSQL's (only Date is faked: timers run as usual).
      vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
      vi.setSystemTime(Date.now() - 120_000);
      const res = await postJson(`${svc.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 700,
        request_id: requestId,
      });
      expect(res.status).toBe(202);
      await gate.entered; // the worker's attempt has begun; its call to Stripe waits
      const processing = await getJson(`${svc.url}/refund-status/${requestId}`);
      expect(processing.json.status).toBe('processing');
      gate.release();
      const done = await eventually(
        () => getJson(`${svc.url}/refund-status/${requestId}`),
        (r) => r.json.status === 'succeeded',
      );
      const at = (r: { json: Record<string, unknown> }, k: string) => Date.parse(String(r.json[k]));
      expect(at(done, 'updated_at')).toBeGreaterThanOrEqual(at(processing, 'updated_at'));
      expect(at(done, 'updated_at')).toBeGreaterThanOrEqual(at(done, 'created_at'));
    } finally {
      gate.restore();
    }
  },
);

/*
 * A row dated ahead of both this process's clock and PostgreSQL's (written by an instance whose clock is ahead): a
 * later change dated no earlier than it, but not after it, kept that same updated_at. The outcome message's id is
 * `<request>#<status>#<updated_at>` and unique in the outbox, so a refund going pending -> requires_action -> pending
 * (Stripe's one sideways move) announced `pending` again under the first one's id: the webhook's transaction failed
 * on the duplicate id, and the ledger stayed at requires_action while Stripe said pending.
 */
it.skipIf(!pgOk)(
  "a refund moving pending -> requires_action -> pending after a write dated ahead of this process's clock follows Stripe",
  async () => {
    const pi = await paidIntent(svc.url, 5000);
    const id = `re_review${randomBytes(8).toString('hex')}`;
    // A refund made in the dashboard, as its webhooks bring it (applyStripeRefund trusts a signed event's object).
    const stripeRefund = (status: string) =>
      ({
        id,
        object: 'refund',
        amount: 700,
        currency: 'usd',
        payment_intent: pi,
        status,
        metadata: {},
        created: Math.floor(Date.now() / 1000),
      }) as unknown as Stripe.Refund;

    // Its first event handled by an instance whose clock is two minutes ahead (only Date is faked).
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    vi.setSystemTime(Date.now() + 120_000);
    await svc.deps.refunds.applyStripeRefund(stripeRefund('pending'));
    vi.useRealTimers();

    // The next ones by an instance whose clock is right.
    await svc.deps.refunds.applyStripeRefund(stripeRefund('requires_action'));
    await svc.deps.refunds.applyStripeRefund(stripeRefund('pending'));

    const status = await getJson(`${svc.url}/refund-status/stripe:${id}`);
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({ status: 'pending', refund_id: id });
  },
);
