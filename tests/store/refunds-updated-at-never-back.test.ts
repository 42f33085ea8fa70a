/**
 * A refund's `updated_at` is "when it last changed" (GET /refund-status), and its outcome message's id is
 * `<request>#<status>#<updated_at>`, unique in the outbox. No write moves it back, nor leaves it where it was: not
 * after a change dated ahead of this process's clock (by an instance whose clock is ahead, or this clock stepped back
 * by NTP), nor for two changes within one millisecond. Before, only PostgreSQL's settling changes kept to that: an
 * attempt begun, a takeover, a lowered amount and every SQLite write were stamped by this process's clock (or
 * PostgreSQL's) alone.
 */
import { afterEach, expect, it, vi } from 'vitest';
import type { NewRefund, Refund } from '../../src/store/index.js';
import { describeStore, skewClock, uid } from './harness.js';

const AHEAD_MS = 120_000;

afterEach(() => {
  vi.useRealTimers();
});

const refund = (over: Partial<NewRefund> = {}): NewRefund => ({
  requestId: uid('req'),
  owner: 'acme',
  paymentIntentId: uid('pi'),
  amount: 500,
  currency: 'usd',
  status: 'queued',
  mode: 'async',
  ...over,
});

const ms = (r: Pick<Refund, 'updatedAt'> | null | undefined) => Date.parse(r!.updatedAt);

describeStore('a refund row never goes back in time', (h) => {
  /** The refund as written by an instance whose clock is two minutes ahead of this one's. */
  async function writtenAhead(over: Partial<NewRefund> = {}): Promise<Refund> {
    skewClock(AHEAD_MS);
    try {
      return await h.store.refunds.insert(refund(over));
    } finally {
      vi.useRealTimers();
    }
  }

  it('an attempt begun after a change dated ahead of this clock is dated after it', async () => {
    const ahead = await writtenAhead();
    const begun = await h.store.refunds.beginAttempt(ahead.requestId);
    expect(begun?.status).toBe('processing');
    expect(ms(begun)).toBeGreaterThan(ms(ahead));
    expect(await h.store.refunds.get(ahead.requestId)).toEqual(begun);

    // Taken back (its Stripe call never made): queued again, still not dated before.
    expect(await h.store.refunds.takeBackAttempt(ahead.requestId, begun!.attempts)).toBe(true);
    const back = await h.store.refunds.get(ahead.requestId);
    expect(back?.status).toBe('queued');
    expect(ms(back)).toBeGreaterThanOrEqual(ms(begun));
  });

  it('a takeover of an idle synchronous refund dated ahead of this clock is dated after it', async () => {
    const ahead = await writtenAhead({ status: 'processing', mode: 'sync', attempts: 1 });
    const taken = await h.store.refunds.beginAttempt(ahead.requestId, 1);
    expect(taken?.attempts).toBe(2);
    expect(ms(taken)).toBeGreaterThan(ms(ahead));
  });

  it('a lowered amount after a change dated ahead of this clock is dated after it', async () => {
    const ahead = await writtenAhead({ status: 'processing', mode: 'sync', attempts: 1 });
    expect(await h.store.refunds.lowerAmount(ahead.requestId, 500, 400, { note: 'x' })).toBe(true);
    const lowered = await h.store.refunds.get(ahead.requestId);
    expect(lowered?.amount).toBe(400);
    expect(ms(lowered)).toBeGreaterThan(ms(ahead));
  });

  it("Stripe's news, a refusal and other changes after one dated ahead of this clock are dated after it", async () => {
    const changes: [string, (r: Refund) => Promise<boolean | number | null>, Partial<NewRefund>][] = [
      [
        'advance',
        (r) => h.store.refunds.advance(r.requestId, { status: 'requires_action' }),
        { status: 'pending', stripeRefundId: uid('re') },
      ],
      ['giveUp', (r) => h.store.refunds.giveUp(r.requestId, 'worker_error'), { status: 'processing' }],
      [
        'correctFromStripe',
        (r) =>
          h.store.refunds.correctFromStripe(r.requestId, { status: 'succeeded', stripeRefundId: uid('re') }),
        { status: 'failed' },
      ],
      [
        'patch',
        (r) => h.store.refunds.patch(r.requestId, { failureReason: 'lost' }),
        { status: 'processing' },
      ],
      ['incrementAttempts', (r) => h.store.refunds.incrementAttempts(r.requestId), {}],
    ];
    for (const [name, change, over] of changes) {
      const ahead = await writtenAhead(over);
      expect(await change(ahead), name).toBeTruthy();
      const after = await h.store.refunds.get(ahead.requestId);
      expect(ms(after), name).toBeGreaterThan(ms(ahead));
    }
  });

  it('changes of one refund within one millisecond are each dated after the one before', async () => {
    // This clock stands still: every change is made in the same millisecond.
    vi.useFakeTimers({ toFake: ['Date'] });
    const first = await h.store.refunds.insert(refund({ status: 'pending', stripeRefundId: uid('re') }));
    const seen = [first];
    for (const status of ['requires_action', 'pending', 'succeeded'] as const) {
      expect(await h.store.refunds.advance(first.requestId, { status })).toBe(true);
      seen.push((await h.store.refunds.get(first.requestId))!);
    }
    expect(seen.map((r) => r.status)).toEqual(['pending', 'requires_action', 'pending', 'succeeded']);
    for (let i = 1; i < seen.length; i++) expect(ms(seen[i])).toBeGreaterThan(ms(seen[i - 1]));
    // So the outcome message ids (`<request>#<status>#<updated_at>`) of the two visits to pending differ.
    expect(seen[2]!.updatedAt).not.toBe(seen[0]!.updatedAt);
  });

  it("Stripe's answer for an attempt whose row changed after it was read, dated ahead, is never dated before that change", async () => {
    const accepted = await h.store.refunds.insert(refund());
    const current = (await h.store.refunds.beginAttempt(accepted.requestId))!;
    // Meanwhile an instance whose clock is ahead changes the row (here a field; the sweep's touch is another).
    skewClock(AHEAD_MS);
    expect(await h.store.refunds.patch(current.requestId, { failureReason: 'lost' })).toBe(true);
    vi.useRealTimers();
    const changed = (await h.store.refunds.get(current.requestId))!;

    const settled = await h.store.refunds.settleAttemptAnnounced(
      current,
      { status: 'succeeded', stripeRefundId: uid('re'), currency: 'usd', failureReason: null },
      (row) => ({
        destination: 'responses',
        messageId: `${row.requestId}#${row.status}#${row.updatedAt}`,
        payload: {},
      }),
    );
    const now = (await h.store.refunds.get(current.requestId))!;
    expect(ms(now)).toBeGreaterThanOrEqual(ms(changed));
    // Moved (then after that change, as its message says), or left for the general path (RefundService).
    if (settled) {
      expect(ms(settled.refund)).toBeGreaterThan(ms(changed));
      expect(now).toEqual(settled.refund);
    } else {
      expect(now).toEqual(changed);
    }
  });
});
