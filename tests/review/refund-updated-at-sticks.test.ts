/**
 * Review (fails): a row dated ahead of both this process's clock and PostgreSQL's (written by an instance whose clock is ahead): a
 * later change dated no earlier than it, but not after it, kept that same updated_at. The outcome message's id is
 * `<request>#<status>#<updated_at>` and unique in the outbox, so a refund going pending -> requires_action -> pending
 * (Stripe's one sideways move) announced `pending` again under the first one's id: the webhook's transaction failed
 * on the duplicate id, and the ledger stayed at requires_action while Stripe said pending.
 */
import { randomBytes } from 'node:crypto';
import type Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { getJson, paidIntent } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';
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
