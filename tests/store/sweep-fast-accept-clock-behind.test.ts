/**
 * Refunds' updated_at by PostgreSQL's clock (222a2c4): the commit says an accepted async refund is
 * written no older than PostgreSQL's clock says, so the stuck-refund sweep does not queue it again at once when the
 * accepting process's clock is behind. It changed insertAnnounced (the transactional accept) only. On PostgreSQL
 * the common POST /refund-async (the caller's own succeeded payment) is accepted by RefundsRepo.acceptAnnounced, one
 * statement, which still writes updated_at by the process's clock: such a refund is stale the moment it is written,
 * and every sweep queues it again while it waits for the worker.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { describePostgres, skewClock, uid } from './harness.js';
import { REQUESTS_QUEUE, succeededIntent, sweepStuck } from './sweep-support.js';

const BEHIND_MS = 15 * 60_000;

afterEach(() => {
  vi.useRealTimers();
});

describePostgres('stuck-refund sweep: an async refund accepted by one statement, clock behind', (h) => {
  it('is not queued again by the sweep right after it is accepted', async () => {
    const store = await h.open(h.newDatabase());
    const pi = await succeededIntent(store);
    skewClock(-BEHIND_MS);
    const requestId = uid('fast');
    const accepted = await store.refunds.acceptAnnounced!(
      {
        requestId,
        owner: 'acme',
        paymentIntentId: pi,
        amount: 300,
        reason: null,
        status: 'queued',
        mode: 'async',
        requestHash: 'h1',
        metadata: {},
      },
      { destination: REQUESTS_QUEUE, messageId: `${requestId}#accept`, payload: { requestId } },
    );
    expect(accepted?.refund.status).toBe('queued');
    const messages = await store.outbox.pendingCount();

    expect(await sweepStuck(store)).toBe(0);
    expect(await store.outbox.pendingCount()).toBe(messages);
  });
});
