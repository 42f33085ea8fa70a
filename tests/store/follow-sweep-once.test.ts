/**
 * The stuck-refund sweep (requeueStuck) runs in every worker process, with nothing between them: each stale refund
 * got one more message per worker every round, and a worker whose clock ran 10 minutes ahead re-queued every
 * refund in flight (each looked stale to it). Only one sweep may re-queue a given refund per round, and on
 * PostgreSQL a refund's age is judged by the database's clock.
 */
import { pino } from 'pino';
import { afterEach, expect, it, vi } from 'vitest';
import { requeueStuck, type Deps } from '../../src/service.js';
import type { Store } from '../../src/store/index.js';
import { barrier, describePostgres, describeStore, uid } from './harness.js';

afterEach(() => {
  vi.useRealTimers();
});

function depsOf(store: Store): Deps {
  return {
    store,
    broker: { isConnected: () => true },
    topology: { requests: 'stripe_refund_requests' },
    logger: pino({ level: 'silent' }),
  } as unknown as Deps;
}

async function addInFlight(store: Store, n: number, updatedAt?: Date): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const requestId = uid('stuck');
    await store.refunds.insert({
      requestId,
      paymentIntentId: 'pi_sweep',
      amount: 100,
      currency: 'usd',
      status: i % 2 === 0 ? 'queued' : 'processing',
      mode: 'async',
      ...(updatedAt && { createdAt: updatedAt }),
    });
    ids.push(requestId);
  }
  return ids;
}

/** Refund request messages waiting in the outbox, per refund. */
async function messagesPerRefund(store: Store): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const m of await store.outbox.claimBatch(10_000)) {
    const key = (m.payload as { request_key: string }).request_key;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

describeStore('stuck-refund sweep in several processes', (h) => {
  it('two sweeps of one round re-queue each stale refund once between them', async () => {
    const options = h.newDatabase();
    const a = await h.open(options);
    const b = await h.open(options);
    const ids = await addInFlight(a, 6, new Date(Date.now() - 3_600_000));

    // Both read the stale refunds before either re-queues one, as two workers' sweeps at the same minute do.
    const bothRead = barrier(2);
    const reading = (store: Store): Store => ({
      ...store,
      refunds: {
        ...store.refunds,
        listByStatus: async (statuses, limit) => {
          const page = await store.refunds.listByStatus(statuses, limit);
          await bothRead();
          return page;
        },
      },
    });
    const [n1, n2] = await Promise.all([
      requeueStuck(depsOf(reading(a)), 10 * 60_000),
      requeueStuck(depsOf(reading(b)), 10 * 60_000),
    ]);

    expect(n1 + n2).toBe(ids.length);
    const counts = await messagesPerRefund(a);
    expect(Object.fromEntries(counts)).toEqual(Object.fromEntries(ids.map((id) => [id, 1])));
  });
});

describePostgres('stuck-refund sweep and clocks', (h) => {
  it("a worker whose clock is 15 minutes ahead judges refunds' age by the database's clock", async () => {
    const options = h.newDatabase();
    const store = await h.open(options);
    const fresh = await addInFlight(store, 4);
    const stale = await addInFlight(store, 2, new Date(Date.now() - 3_600_000));

    // Only Date is faked: the database, timers and I/O run as usual.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 15 * 60_000);
    const n = await requeueStuck(depsOf(store), 10 * 60_000);
    vi.useRealTimers();

    expect(n).toBe(stale.length);
    const counts = await messagesPerRefund(store);
    expect(Object.fromEntries(counts)).toEqual(Object.fromEntries(stale.map((id) => [id, 1])));
    // And the re-queued refunds were touched by the database's clock, not 15 minutes into the future.
    for (const id of stale) {
      const r = await store.refunds.get(id);
      expect(Math.abs(Date.parse(r!.updatedAt) - Date.now())).toBeLessThan(60_000);
    }
    for (const id of fresh) expect((await store.refunds.get(id))?.status).toMatch(/queued|processing/);
  });
});
