/**
 * A refund's `updated_at` (GET /refund-status) is "when the refund last changed". On PostgreSQL, the writes of a
 * refund in flight (accepted to the queue, an attempt begun) are stamped no earlier than PostgreSQL's clock, for the
 * stuck-refund sweep; the writes that settle it (Stripe's answer, a refusal, a webhook) by this process's clock
 * alone. With this process's clock behind PostgreSQL's (another host, NTP not yet caught up), a refund that moved
 * from `processing` to `succeeded` showed an `updated_at` earlier than the one it showed while processing: the
 * later change dated before the earlier one, by the skew.
 */
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { gateRefundCreate } from '../helpers/stripe-gate.js';
import { postgresAvailable } from '../helpers/services.js';

const pgOk = await postgresAvailable();

const ENV = { API_AUTH: 'off', STRIPE_MAX_NETWORK_RETRIES: '0' };
let svc: TestService;
let lite: TestService;
beforeAll(async () => {
  lite = await startTestService('sqlite', ENV);
  if (!pgOk) return;
  svc = await startTestService('postgres', ENV);
});
afterEach(() => {
  vi.useRealTimers();
});
afterAll(async () => {
  await Promise.all([svc?.stop(), lite?.stop()]);
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

/** A refund made in the dashboard, as its webhooks bring it (applyStripeRefund trusts a signed event's object). */
function dashboardRefund(pi: string) {
  const id = `re_review${randomBytes(8).toString('hex')}`;
  return {
    id,
    at: (status: string) =>
      ({
        id,
        object: 'refund',
        amount: 700,
        currency: 'usd',
        payment_intent: pi,
        status,
        metadata: {},
        created: Math.floor(Date.now() / 1000),
      }) as unknown as Stripe.Refund,
  };
}

describe.each([
  ['sqlite', () => lite, true],
  ['postgres', () => svc, pgOk],
] as const)('[%s]', (_db, service, available) => {
  /*
   * SQLite stamped each change by this process's clock alone. Three changes within one millisecond (events applied
   * back to back, or this clock stepped back by NTP onto the first one's time): `pending` again was dated as the first
   * `pending`, its outcome message took that one's id, and the outbox refused it (unique message_id). The webhook's
   * transaction failed and the ledger stayed at requires_action, dated before it was, until a retry of the event.
   */
  it.skipIf(!available)(
    'a refund moving pending -> requires_action -> pending within one millisecond follows Stripe',
    async () => {
      const s = service();
      const pi = await paidIntent(s.url, 5000);
      const refund = dashboardRefund(pi);
      // This process's clock stands still (only Date is faked): the three changes share one millisecond.
      vi.useFakeTimers({ toFake: ['Date'] });
      const seen: Record<string, unknown>[] = [];
      for (const status of ['pending', 'requires_action', 'pending']) {
        await s.deps.refunds.applyStripeRefund(refund.at(status));
        seen.push((await getJson(`${s.url}/refund-status/stripe:${refund.id}`)).json);
      }
      expect(seen.map((r) => r.status)).toEqual(['pending', 'requires_action', 'pending']);
      const times = seen.map((r) => Date.parse(String(r.updated_at)));
      expect(times[1]).toBeGreaterThan(times[0]!);
      expect(times[2]).toBeGreaterThan(times[1]!);
    },
  );
});

/*
 * On PostgreSQL, an attempt begun was stamped greatest(this clock, PostgreSQL's), not after the row's own updated_at:
 * a refund whose last change was dated ahead of both clocks (by an instance whose clock is ahead) went back in time
 * when the worker's next attempt began.
 */
it.skipIf(!pgOk)("a refund's next attempt is dated after a change dated ahead of both clocks", async () => {
  const pi = await paidIntent(svc.url, 5000);
  const requestId = `clocks-${randomBytes(4).toString('hex')}`;
  const refunds = svc.deps.stripe.refunds;
  const create = refunds.create.bind(refunds);
  let firstIn!: () => void;
  const firstEntered = new Promise<void>((r) => (firstIn = r));
  let releaseFirst!: () => void;
  const firstGate = new Promise<void>((r) => (releaseFirst = r));
  let secondIn!: () => void;
  const secondEntered = new Promise<void>((r) => (secondIn = r));
  let releaseSecond!: () => void;
  const secondGate = new Promise<void>((r) => (releaseSecond = r));
  let calls = 0;
  // The first call is held, then lost on the way (nothing made at Stripe); the second is held, then made.
  refunds.create = (async (...args: Parameters<typeof create>) => {
    calls += 1;
    if (calls === 1) {
      firstIn();
      await firstGate;
      throw new Stripe.errors.StripeConnectionError({ message: 'connection lost', type: 'api_error' });
    }
    secondIn();
    await secondGate;
    return create(...args);
  }) as typeof refunds.create;
  try {
    const res = await postJson(`${svc.url}/refund-async`, {
      payment_intent_id: pi,
      amount: 700,
      request_id: requestId,
    });
    expect(res.status).toBe(202);
    await firstEntered;
    // Meanwhile an instance whose clock is two minutes ahead changed the row.
    await svc.sql(
      `update refunds set updated_at = now() + interval '2 minutes' where request_id = '${requestId}'`,
    );
    const ahead = await getJson(`${svc.url}/refund-status/${requestId}`);
    releaseFirst();
    await secondEntered; // the worker's second attempt has begun
    const second = await getJson(`${svc.url}/refund-status/${requestId}`);
    expect(second.json.status).toBe('processing');
    releaseSecond();
    const done = await eventually(
      () => getJson(`${svc.url}/refund-status/${requestId}`),
      (r) => r.json.status === 'succeeded',
    );
    expect(done.json.status).toBe('succeeded');
    const at = (r: { json: Record<string, unknown> }) => Date.parse(String(r.json.updated_at));
    expect(at(second)).toBeGreaterThan(at(ahead));
    expect(at(done)).toBeGreaterThan(at(second));
  } finally {
    releaseFirst();
    releaseSecond();
    refunds.create = create as typeof refunds.create;
  }
});
