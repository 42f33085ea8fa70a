/**
 * The outbox relay reads PostgreSQL's clock again as soon as this process's clock is stepped. When that read failed
 * (a timeout, a connection lost) it went on by the offset read before the step for up to a minute: stepped back ten
 * minutes, it leased the rows it claimed, and renewed the leases of those it held, ten minutes into the past, and
 * another relay (its clock right) claimed them too and published them a second time.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { createOutboxRelay } from '../../src/queue/outbox-relay.js';
import type { Store } from '../../src/store/index.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import { describePostgres, silentLogger, skewClock, uid, until, type StoreHarness } from './harness.js';
import { collect, slowBroker } from './relay-support.js';

const QUEUE = 'stripe_refund_requests';
const STEP_MS = -600_000;

afterEach(() => {
  vi.useRealTimers();
});

/**
 * A relay whose reads of the database's clock fail while `failReads` says so (a number of reads, or Infinity), on
 * a broker slow to confirm (publishes wait for `open()`), and another process's store, whose clock is right;
 * stop() ends them.
 */
async function rig(h: StoreHarness, leaseMs?: number) {
  const options = h.newDatabase();
  const base = await h.open(options);
  const other = await h.open(options);
  const clock = { failReads: 0, reads: 0, answered: 0 };
  const store: Store = {
    ...base,
    clockOffsetMs: async () => {
      clock.reads++;
      if (clock.failReads > 0) {
        clock.failReads--;
        throw new StoreUnavailableError('PostgreSQL did not answer in time');
      }
      const offset = await base.clockOffsetMs();
      clock.answered++;
      return offset;
    },
  };
  const { broker, open, sent } = await slowBroker();
  const got = await collect(broker, QUEUE);
  const relay = createOutboxRelay({
    store,
    broker,
    logger: silentLogger,
    idleMs: 20,
    ...(leaseMs && { leaseMs }),
  });
  /** Lets the publishes go, stops the relay and closes the broker. */
  const stop = async () => {
    open();
    await relay.stop();
    await broker.close();
  };
  return { base, other, clock, open, sent, got, relay, stop };
}

describePostgres('outbox relay: the clock read after a clock step fails', (h) => {
  it('claims nothing by the old offset: another relay does not publish the rows it takes', async () => {
    const { base, other, clock, open, sent, got, relay, stop } = await rig(h);
    relay.start();
    try {
      expect(await until(() => clock.answered === 1)).toBe(true);
      // This process's clock is stepped ten minutes back, and the relay's next read of the database's clock fails.
      clock.failReads = 1;
      skewClock(STEP_MS);
      expect(await until(() => clock.reads >= 2)).toBe(true);

      const row = await other.outbox.add({
        destination: QUEUE,
        messageId: uid('stepped'),
        payload: { n: 1 },
      });
      relay.notify();
      expect(await until(() => sent.publishes === 1)).toBe(true);
      // The relay holds the row under its lease: the other relay, claiming by the right time, leaves it alone.
      const taken = await other.outbox.claimBatch(10, new Date(Date.now() - STEP_MS));
      expect(taken.map((m) => m.id)).not.toContain(row.id);

      open();
      expect(await until(async () => (await base.outbox.pendingCount()) === 0)).toBe(true);
      expect(got.map((d) => d.messageId)).toEqual([row.messageId]);
    } finally {
      await stop();
    }
  }, 30_000);

  it("claims nothing by offset 0 when its first read of the database's clock fails, and tries again every second", async () => {
    const { base, other, clock, open, sent, got, relay, stop } = await rig(h);
    // This process's clock is ten minutes behind PostgreSQL's from the start, and the relay's reads fail.
    skewClock(STEP_MS);
    clock.failReads = Infinity;
    relay.start();
    try {
      expect(await until(() => clock.reads >= 1)).toBe(true);
      // No hand-off meanwhile: its lease would be by this process's clock.
      expect(relay.leaseForHandOff()).toBeNull();
      const row = await other.outbox.add({ destination: QUEUE, messageId: uid('start'), payload: { n: 1 } });
      relay.notify();
      // Read again (a second later), failing again: still nothing claimed.
      expect(await until(() => clock.reads >= 2)).toBe(true);
      expect(sent.publishes).toBe(0);
      clock.failReads = 0;
      expect(await until(() => sent.publishes === 1)).toBe(true);
      // Claimed only once a read answered: the lease is by PostgreSQL's clock, and another relay leaves the row alone.
      expect(clock.answered).toBe(1);
      const taken = await other.outbox.claimBatch(10, new Date(Date.now() - STEP_MS));
      expect(taken.map((m) => m.id)).not.toContain(row.id);

      open();
      expect(await until(async () => (await base.outbox.pendingCount()) === 0)).toBe(true);
      expect(got.map((d) => d.messageId)).toEqual([row.messageId]);
    } finally {
      await stop();
    }
  }, 30_000);

  // The relay's loop waits for the broker meanwhile, so the clock is not read again (and would fail): the renewals go
  // by a step they cannot measure yet.
  it('renews the leases of the rows it holds into the future, before it could read the database clock again', async () => {
    const leaseMs = 1_500;
    const { base, other, clock, open, sent, got, relay, stop } = await rig(h, leaseMs);
    relay.start();
    try {
      expect(await until(() => clock.answered === 1)).toBe(true);
      const row = await other.outbox.add({ destination: QUEUE, messageId: uid('held'), payload: { n: 1 } });
      relay.notify();
      expect(await until(() => sent.publishes === 1)).toBe(true);
      // Held (the broker not confirming) when this process's clock is stepped ten minutes back, and the database's
      // clock cannot be read any more.
      clock.failReads = Infinity;
      skewClock(STEP_MS);
      // Two leases long: the lease the claim gave has ended, and the relay has renewed it (at least) once.
      await new Promise((r) => setTimeout(r, 2 * leaseMs));
      const taken = await other.outbox.claimBatch(10, new Date(Date.now() - STEP_MS));
      expect(taken.map((m) => m.id)).not.toContain(row.id);

      open();
      clock.failReads = 0;
      expect(await until(async () => (await base.outbox.pendingCount()) === 0)).toBe(true);
      expect(got.map((d) => d.messageId)).toEqual([row.messageId]);
    } finally {
      await stop();
    }
  }, 30_000);
});
