/**
 * The stuck-refund sweep judges a refund's age by PostgreSQL's clock, but the refund's `updated_at` was written by
 * the clock of the process that accepted it or began its attempt. A process whose clock is 15 minutes behind the
 * database's wrote refunds that were 15 minutes old the moment they were written: every sweep (any process's)
 * queued each of them again while it was in flight. A refund in flight is now never written older than
 * PostgreSQL's clock says it is.
 */
import { pino } from 'pino';
import { afterEach, expect, it, vi } from 'vitest';
import { requeueStuck, type Deps } from '../../src/service.js';
import type { Store } from '../../src/store/index.js';
import { describePostgres, uid } from './harness.js';

const QUEUE = 'stripe_refund_requests';
const BEHIND_MS = 15 * 60_000;
/** The service's sweep: refunds unchanged for 10 minutes. */
const STALE_MS = 10 * 60_000;

afterEach(() => {
  vi.useRealTimers();
});

/** This process's clock is `skewMs` off from now on (PostgreSQL's, on the same machine, is not). */
function skewClock(skewMs: number): void {
  const real = Date.now();
  vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
  vi.setSystemTime(real + skewMs);
}

function sweep(store: Store): Promise<number> {
  const deps = {
    store,
    broker: { isConnected: () => true },
    topology: { requests: QUEUE },
    logger: pino({ level: 'silent' }),
  } as unknown as Deps;
  return requeueStuck(deps, STALE_MS);
}

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
          { destination: QUEUE, messageId: uid('accepted'), payload: { requestId } },
        ),
      );
    const queued = await accept(uid('queued'));
    const begun = await accept(uid('begun'));
    expect((await store.refunds.beginAttempt(begun.refund.requestId))?.status).toBe('processing');
    const messages = await store.outbox.pendingCount();

    expect(await sweep(store)).toBe(0);
    expect(await store.outbox.pendingCount()).toBe(messages);
    // The refunds as a client reads them: changed no earlier than they were created.
    const read = await store.refunds.get(queued.refund.requestId);
    expect(Date.parse(read!.updatedAt)).toBeGreaterThanOrEqual(Date.parse(read!.createdAt));
  });
});
