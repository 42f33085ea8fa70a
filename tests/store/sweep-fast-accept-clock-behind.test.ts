/**
 * Refunds' updated_at by PostgreSQL's clock (222a2c4): the commit says an accepted async refund is
 * written no older than PostgreSQL's clock says, so the stuck-refund sweep does not queue it again at once when the
 * accepting process's clock is behind. It changed insertAnnounced (the transactional accept) only. On PostgreSQL
 * the common POST /refund-async (the caller's own succeeded payment) is accepted by RefundsRepo.acceptAnnounced, one
 * statement, which still writes updated_at by the process's clock: such a refund is stale the moment it is written,
 * and every sweep queues it again while it waits for the worker.
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

describePostgres('stuck-refund sweep: an async refund accepted by one statement, clock behind', (h) => {
  it('is not queued again by the sweep right after it is accepted', async () => {
    const store = await h.open(h.newDatabase());
    const pi = uid('pi');
    await store.payments.insert({
      id: pi,
      kind: 'payment_intent',
      owner: 'acme',
      amount: 1_000,
      currency: 'eur',
      status: 'succeeded',
    });
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
      { destination: QUEUE, messageId: `${requestId}#accept`, payload: { requestId } },
    );
    expect(accepted?.refund.status).toBe('queued');
    const messages = await store.outbox.pendingCount();

    expect(await sweep(store)).toBe(0);
    expect(await store.outbox.pendingCount()).toBe(messages);
  });
});
