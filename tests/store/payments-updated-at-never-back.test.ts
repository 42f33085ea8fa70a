/**
 * A payment row's `updated_at` is half of the compare-and-set a payment intent's event writes with (upsertIfUnchanged:
 * the row as the event last saw it, its status and updated_at). Stamped by this process's clock alone, a write within
 * the same millisecond as the one before (or after a change dated ahead of this clock) left the row at a time it
 * already had: an event whose read of the intent was older than that write's then found the row "unchanged" and wrote
 * over the newer view.
 */
import { afterEach, expect, it, vi } from 'vitest';
import type { NewPayment } from '../../src/store/index.js';
import { describeStore, skewClock, uid } from './harness.js';

const FINAL = ['succeeded', 'canceled'] as const;

afterEach(() => {
  vi.useRealTimers();
});

const intent = (over: Partial<NewPayment> = {}): NewPayment => ({
  id: uid('pi'),
  kind: 'payment_intent',
  owner: 'acme',
  amount: 2_000,
  currency: 'usd',
  status: 'requires_action',
  ...over,
});

describeStore('a payment row never goes back in time', (h) => {
  it('a write within the millisecond of the one an event saw is not taken for the row it saw', async () => {
    // This process's clock stands still: every write is made in the same millisecond.
    vi.useFakeTimers({ toFake: ['Date'] });
    const id = uid('pi');
    await h.store.payments.upsert(intent({ id }));
    const seen = (await h.store.payments.get(id))!;
    // Another write (a newer read of the intent) since the event looked: same status, a new amount.
    const newer = await h.store.payments.upsert(intent({ id, amount: 2_100 }), { finalStatuses: FINAL });
    expect(newer.amount).toBe(2_100);
    expect(Date.parse(newer.updatedAt)).toBeGreaterThan(Date.parse(seen.updatedAt));

    const older = await h.store.payments.upsertIfUnchanged(intent({ id, amount: 1_900 }), seen, {
      finalStatuses: FINAL,
    });
    expect(older).toBeNull();
    expect((await h.store.payments.get(id))?.amount).toBe(2_100);
  });

  it('writes after one dated ahead of this clock are dated after it', async () => {
    skewClock(120_000);
    const ahead = await h.store.payments.insert(intent());
    vi.useRealTimers();

    const updated = await h.store.payments.update(ahead.id, { status: 'processing' });
    expect(Date.parse(updated!.updatedAt)).toBeGreaterThan(Date.parse(ahead.updatedAt));
    const upserted = await h.store.payments.upsert(intent({ id: ahead.id, status: 'succeeded' }));
    expect(upserted.status).toBe('succeeded');
    expect(Date.parse(upserted.updatedAt)).toBeGreaterThan(Date.parse(updated!.updatedAt));
  });
});
