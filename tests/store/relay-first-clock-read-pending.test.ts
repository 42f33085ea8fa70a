/**
 * The outbox relay's first read of PostgreSQL's clock (b9d12d9: none taken once that read has failed). It also takes
 * no hand-offs while the read has not answered yet (PostgreSQL slow
 * to answer at start: up to DATABASE_TIMEOUT_MS). A hand-off then is leased by this process's clock, offset 0: a
 * process ten minutes behind leases the row ten minutes into the past, and another relay, its clock right, claims
 * the row this one holds and publishes it too.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { createOutboxRelay, leased } from '../../src/queue/outbox-relay.js';
import type { Store } from '../../src/store/index.js';
import { describePostgres, silentLogger, skewClock, uid, until } from './harness.js';
import { slowBroker } from './relay-support.js';

const QUEUE = 'stripe_refund_requests';
const STEP_MS = -600_000;

afterEach(() => {
  vi.useRealTimers();
});

describePostgres("outbox relay: its first read of the database's clock not answered yet", (h) => {
  it('a row handed over meanwhile is not claimed by another relay', async () => {
    const options = h.newDatabase();
    const base = await h.open(options);
    const other = await h.open(options);
    // The first read answers only when the test says so (PostgreSQL slow to answer at start).
    let answer!: () => void;
    const answered = new Promise<void>((r) => (answer = r));
    const clock = { reads: 0 };
    const store: Store = {
      ...base,
      clockOffsetMs: async () => {
        clock.reads++;
        if (clock.reads === 1) await answered;
        return base.clockOffsetMs();
      },
    };
    // The broker slow to confirm: the relay holds the row meanwhile.
    const { broker, open } = await slowBroker();
    // This process's clock is ten minutes behind PostgreSQL's.
    skewClock(STEP_MS);
    const relay = createOutboxRelay({ store, broker, logger: silentLogger, idleMs: 20 });
    relay.start();
    try {
      expect(await until(() => clock.reads >= 1)).toBe(true);
      // What a refund accept does: a row leased to this relay when it offers a lease, else written unleased.
      const message = { destination: QUEUE, messageId: uid('pending-read'), payload: { n: 1 } };
      const lease = relay.leaseForHandOff();
      if (lease !== null) {
        const writing = leased(message, lease);
        const row = await base.outbox.add(writing.message);
        relay.handOff(writing.handOff(row.id));
      } else {
        await base.outbox.add(message);
      }
      // Another process's relay, whose clock is right, claims: a row this relay holds is left to it.
      const taken = await other.outbox.claimBatch(10, new Date(Date.now() - STEP_MS));
      const claimedByOther = taken.some((m) => m.messageId === message.messageId);
      // Held here and claimed there: published by both relays.
      expect(lease !== null && claimedByOther).toBe(false);
    } finally {
      answer();
      open();
      await relay.stop();
      await broker.close();
    }
  }, 30_000);
});
