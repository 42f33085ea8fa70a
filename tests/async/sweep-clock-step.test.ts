/**
 * The sweep for stuck refunds pages through queued/processing rows oldest first and relies on each
 * re-queued row being touched (updated_at = now) to move it past the cutoff. When the wall clock steps back
 * during a sweep (NTP step, VM resumed), the touched rows are still older than the cutoff computed before the
 * step, so the next page returns them again: the sweep loops, writing one more outbox row per refund per page,
 * until the clock has caught up with the cutoff (as long as the step).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, expect, it, vi } from 'vitest';
import { requeueStuck, type Deps } from '../../src/service.js';
import { createStore, type Store } from '../../src/store/index.js';

afterEach(() => {
  vi.useRealTimers();
});

it('a wall-clock step back during a sweep re-queues each stuck refund once, not in a loop', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rq-sweep-'));
  const store: Store = await createStore({
    url: `sqlite:${join(dir, 'db.sqlite')}`,
    sqliteSynchronous: 'NORMAL',
  });
  try {
    // More than one page (500): the sweep only asks for another page after a full one.
    const stuck = 501;
    for (let i = 0; i < stuck; i++)
      await store.refunds.insert({
        requestId: `stuck-${i}`,
        paymentIntentId: 'pi_x',
        amount: 100,
        currency: 'usd',
        status: 'queued',
        mode: 'async',
      });
    await new Promise((r) => setTimeout(r, 5));

    // Only Date is faked: the store, timers and I/O run as usual.
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date());
    let adds = 0;
    const transaction = store.transaction.bind(store);
    const stepping: Store = {
      ...store,
      transaction: (async (fn: Parameters<Store['transaction']>[0]) => {
        // The clock steps back an hour right after the sweep took its cutoff.
        if (adds === 0) vi.setSystemTime(Date.now() - 3_600_000);
        if (++adds > 3 * stuck) throw new Error('the sweep is looping');
        return transaction(fn);
      }) as Store['transaction'],
    };
    const deps = {
      store: stepping,
      broker: { isConnected: () => true },
      topology: { requests: 'stripe_refund_requests' },
      logger: pino({ level: 'silent' }),
    } as unknown as Deps;

    const result = await requeueStuck(deps, 0).catch((err: Error) => err.message);
    // Each stuck refund re-queued at most once (one may be left for the next sweep: the touched rows now
    // sort before it), and the sweep ends.
    expect(typeof result === 'number' && result >= stuck - 1 && result <= stuck).toBe(true);
    expect(await store.outbox.pendingCount()).toBe(result);
  } finally {
    vi.useRealTimers();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
