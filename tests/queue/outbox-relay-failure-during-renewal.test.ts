/**
 * A publish that fails while the relay is renewing the same row's lease. The renewal's statement has moved the row
 * to a new lease, but the relay has not heard back yet: the failure was recorded under the lease the relay held
 * before, found the row under another one, and was taken for another relay's takeover. The failure (attempts,
 * last error, backoff) was lost, and the row went out again once the renewed lease ended.
 */
import { expect, it, vi } from 'vitest';
import { createOutboxRelay } from '../../src/queue/outbox-relay.js';
import { describeStore, gated, silentLogger, uid, until } from '../store/harness.js';
import { slowBroker } from '../store/relay-support.js';

const QUEUE = 'stripe_refund_requests';

describeStore('outbox relay: a publish failure during a lease renewal', (h) => {
  it('is recorded on the row (attempts, last error, next try) under the renewed lease', async () => {
    const store = await h.open(h.newDatabase());
    // The broker holds the publish until told, then refuses it.
    const { broker, open: refuse, sent } = await slowBroker({ refuse: 'broker refused the message' });
    // The renewal's statement runs, but its answer reaches the relay only when told.
    const answer = gated();
    let renewed = 0;
    const extendLeases = store.outbox.extendLeases.bind(store.outbox);
    vi.spyOn(store.outbox, 'extendLeases').mockImplementation(async (...args) => {
      const ids = await extendLeases(...args);
      renewed += ids.length;
      await answer.gate;
      return ids;
    });
    let failuresRecorded = 0;
    const markFailed = store.outbox.markFailed.bind(store.outbox);
    vi.spyOn(store.outbox, 'markFailed').mockImplementation(async (...args) => {
      const recorded = await markFailed(...args);
      failuresRecorded++;
      return recorded;
    });

    const leaseMs = 3_000;
    const backoffMs = 60_000; // no second try within the test
    const relay = createOutboxRelay({ store, broker, logger: silentLogger, leaseMs, backoffMs, idleMs: 20 });
    const row = await store.outbox.add({ destination: QUEUE, messageId: uid('renewed'), payload: { n: 1 } });
    relay.start();
    try {
      expect(await until(() => sent.publishes === 1)).toBe(true);
      // Two thirds into the lease the relay renews it: the row is under the new lease, the relay not told yet.
      expect(await until(() => renewed === 1)).toBe(true);
      refuse();
      expect(await until(() => failuresRecorded === 1)).toBe(true);
      answer.open();
    } finally {
      refuse();
      answer.open();
      await relay.stop();
    }
    // Not claimable again once the renewed lease ends: it waits out the backoff.
    expect(await store.outbox.claimBatch(10, new Date(Date.now() + 2 * leaseMs), 1)).toEqual([]);
    // What an operator reading the outbox sees: the failed try, recorded.
    const [after] = await store.outbox.claimBatch(10, new Date(Date.now() + 2 * backoffMs), 1);
    expect(after?.id).toBe(row.id);
    expect(after?.attempts).toBe(1);
    expect(after?.lastError).toBe('broker refused the message');
    await broker.close();
  }, 30_000);
});
