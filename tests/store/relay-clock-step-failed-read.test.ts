/**
 * The outbox relay reads PostgreSQL's clock again as soon as this process's clock is stepped. When that read failed
 * (a timeout, a connection lost) it went on by the offset read before the step for up to a minute: stepped back ten
 * minutes, it leased the rows it claimed ten minutes into the past, and another relay (its clock right) claimed
 * them too and published them a second time.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { createMemoryBroker } from '../../src/queue/memory-broker.js';
import { createOutboxRelay } from '../../src/queue/outbox-relay.js';
import type { Delivery } from '../../src/queue/types.js';
import type { Store } from '../../src/store/index.js';
import { StoreUnavailableError } from '../../src/store/errors.js';
import { describePostgres, silentLogger, uid, until } from './harness.js';

const QUEUE = 'stripe_refund_requests';
const STEP_MS = -600_000;

afterEach(() => {
  vi.useRealTimers();
});

describePostgres('outbox relay: the clock read after a clock step fails', (h) => {
  it('claims nothing by the old offset: another relay does not publish the rows it takes', async () => {
    const options = h.newDatabase();
    const base = await h.open(options);
    const other = await h.open(options); // another process, whose clock is right
    let failReads = 0;
    let reads = 0;
    let answered = 0;
    const store: Store = {
      ...base,
      clockOffsetMs: async () => {
        reads++;
        if (failReads > 0) {
          failReads--;
          throw new StoreUnavailableError('PostgreSQL did not answer in time');
        }
        const offset = await base.clockOffsetMs();
        answered++;
        return offset;
      },
    };
    const broker = createMemoryBroker();
    await broker.start();
    // The broker is slow to confirm: the relay holds what it claimed meanwhile.
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const publish = broker.publish.bind(broker);
    let publishes = 0;
    vi.spyOn(broker, 'publish').mockImplementation(async (...args) => {
      publishes++;
      await gate;
      return publish(...args);
    });
    const got: Delivery[] = [];
    await broker.consume(
      QUEUE,
      async (d) => {
        got.push(d);
        return { kind: 'ack' };
      },
      { prefetch: 10, maxAttempts: 1 },
    );
    const relay = createOutboxRelay({ store, broker, logger: silentLogger, idleMs: 20 });
    relay.start();
    try {
      expect(await until(() => answered === 1)).toBe(true);
      // This process's clock is stepped ten minutes back (PostgreSQL's, on the same machine, is not), and the
      // relay's next read of the database's clock fails.
      failReads = 1;
      const real = Date.now();
      vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
      vi.setSystemTime(real + STEP_MS);
      expect(await until(() => reads >= 2)).toBe(true);

      const row = await other.outbox.add({
        destination: QUEUE,
        messageId: uid('stepped'),
        payload: { n: 1 },
      });
      relay.notify();
      expect(await until(() => publishes === 1)).toBe(true);
      // The relay holds the row under its lease: the other relay, claiming by the right time, leaves it alone.
      const taken = await other.outbox.claimBatch(10, new Date(Date.now() - STEP_MS));
      expect(taken.map((m) => m.id)).not.toContain(row.id);

      open();
      expect(await until(async () => (await base.outbox.pendingCount()) === 0)).toBe(true);
      expect(got.map((d) => d.messageId)).toEqual([row.messageId]);
    } finally {
      open();
      await relay.stop();
      await broker.close();
    }
  }, 30_000);
});
