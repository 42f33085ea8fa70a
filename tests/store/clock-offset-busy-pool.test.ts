/**
 * The outbox relay goes by PostgreSQL's clock once it differs from this process's by a second or more
 * (Store.clockOffsetMs). Reading it while the background pool's two connections are busy (a housekeeping purge, a
 * /metrics scrape, lease renewals) must not count the wait for a connection as part of the round trip: taken at
 * the middle of that wait, a database on this very machine read as being ahead by half of it, so the relay
 * warned of a clock that was right, and took rows whose leases other relays still held.
 */
import { expect, it } from 'vitest';
import { BACKGROUND_POOL_SIZE } from '../../src/store/store.js';
import { describePostgres, holdEveryConnection } from './harness.js';

/** How long the background pool stays busy: the old reading was off by half of it. */
const BUSY_MS = 4_000;

describePostgres("the database's clock read while the background pool is busy", (h) => {
  it("reads a PostgreSQL on this machine as agreeing with this process's clock", async () => {
    // Waiting for a connection must not time out while the pool is held.
    const store = await h.openSibling({ connectTimeoutMs: 20_000 });
    const release = await holdEveryConnection(h, 'outbox', BACKGROUND_POOL_SIZE, () =>
      store.outbox.pendingCount(),
    );
    let reading: Promise<number>;
    try {
      reading = store.clockOffsetMs();
      await new Promise((r) => setTimeout(r, BUSY_MS));
    } finally {
      await release();
    }
    // The relay's tolerance (CLOCK_TOLERANCE_MS): the same clock, within it.
    expect(Math.abs(await reading)).toBeLessThan(1_000);
  });
});
