/**
 * The stuck-refund sweep judges a refund's age by PostgreSQL's clock, but the refund's `updated_at` was written by
 * the clock of the process that accepted it or began its attempt. A process whose clock is 15 minutes behind the
 * database's wrote refunds that were 15 minutes old the moment they were written: every sweep (any process's)
 * queued each of them again while it was in flight. A refund in flight is now never written older than
 * PostgreSQL's clock says it is.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { describePostgres, skewClock, uid } from './harness.js';
import { REQUESTS_QUEUE, sweepStuck } from './sweep-support.js';

const BEHIND_MS = 15 * 60_000;

afterEach(() => {
  vi.useRealTimers();
});

describePostgres('stuck-refund sweep: refunds written by a process whose clock is behind', (h) => {
  it('a refund just accepted, and one whose attempt just began, are not queued again', async () => {
    const store = await h.open(h.newDatabase());
    skewClock(-BEHIND_MS);
    const accept = (requestId: string) =>
      store.transaction((tx) =>
        tx.refunds.insertAnnounced(
          {
            requestId,
            paymentIntentId: 'pi_behind',
            amount: 100,
            currency: 'usd',
            status: 'queued',
            mode: 'async',
          },
          { destination: REQUESTS_QUEUE, messageId: uid('accepted'), payload: { requestId } },
        ),
      );
    const queued = await accept(uid('queued'));
    const begun = await accept(uid('begun'));
    expect((await store.refunds.beginAttempt(begun.refund.requestId))?.status).toBe('processing');
    const messages = await store.outbox.pendingCount();

    expect(await sweepStuck(store)).toBe(0);
    expect(await store.outbox.pendingCount()).toBe(messages);
    // The refunds as a client reads them: changed no earlier than they were created.
    const read = await store.refunds.get(queued.refund.requestId);
    expect(Date.parse(read!.updatedAt)).toBeGreaterThanOrEqual(Date.parse(read!.createdAt));
  });
});
