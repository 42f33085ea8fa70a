/**
 * The outbox relay against a real store (SQLite and PostgreSQL) and the in-process broker: rows a writer
 * hands over after its commit are published without being claimed; a handed-over row is never lost, whether
 * the broker is down, the relay is stopped, or the process dies before publishing it.
 */
import { expect, it, vi } from 'vitest';
import { createMemoryBroker } from '../../src/queue/memory-broker.js';
import { createOutboxRelay, leased, type OutboxRelay } from '../../src/queue/outbox-relay.js';
import type { Broker, Delivery } from '../../src/queue/types.js';
import type { OutboxMessage, Store } from '../../src/store/index.js';
import { describeStore, gated, silentLogger, uid } from '../store/harness.js';
import { collect } from '../store/relay-support.js';

const QUEUE = 'stripe_refund_requests';

/** A row written as a writer given a lease of `leaseMs` writes it: no claim takes it before then. */
function addLeased(store: Store, tag: string, leaseMs: number): Promise<OutboxMessage> {
  const availableAt = new Date(Date.now() + leaseMs).toISOString();
  return store.outbox.add({ destination: QUEUE, messageId: uid(tag), payload: { tag }, availableAt });
}

/** What a refund accept does: ask for a lease, write the row with it, hand it over after the commit. */
async function writeAndHandOff(store: Store, relay: OutboxRelay, tag: string): Promise<OutboxMessage> {
  const lease = relay.leaseForHandOff();
  expect(lease).toBeGreaterThan(0);
  const written = await addLeased(store, tag, lease!);
  relay.handOff(written);
  return written;
}

/** `got` receives exactly `messageId`'s message, and the outbox is left with nothing unsent. */
async function publishedOnce(got: Delivery[], store: Store, messageId: string): Promise<void> {
  await until(() => got.length === 1);
  expect(got.map((d) => d.messageId)).toEqual([messageId]);
  await until(async () => (await store.outbox.pendingCount()) === 0);
}

/**
 * `broker` as one relay sees it when the broker is slow to take or confirm its messages (flow control, a
 * resource alarm, confirms slow to come): every publish waits for `gate` first; `publishes` counts them.
 */
function heldBack(broker: Broker, gate: Promise<void>): Broker & { readonly publishes: number } {
  let publishes = 0;
  return new Proxy(broker, {
    get(target, prop) {
      if (prop === 'publishes') return publishes;
      if (prop === 'publish') {
        return async (...args: Parameters<Broker['publish']>) => {
          publishes++;
          await gate;
          return target.publish(...args);
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as Broker & { readonly publishes: number };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Starts `relay` and waits until it offers hand-off leases: not before its first read of the database's clock has
 * answered (a lease by this process's clock alone could end before the database's now).
 */
async function started(relay: OutboxRelay): Promise<void> {
  relay.start();
  await until(() => relay.leaseForHandOff() !== null);
}

describeStore('outbox relay hand-off', (h) => {
  it('publishes handed-over rows and marks them sent without a claim ever returning them', async () => {
    const store = await h.open(h.newDatabase());
    const broker = createMemoryBroker();
    await broker.start();
    const got = await collect(broker, QUEUE);
    const claimed: number[] = [];
    const claim = store.outbox.claimBatch.bind(store.outbox);
    vi.spyOn(store.outbox, 'claimBatch').mockImplementation(async (...args) => {
      const rows = await claim(...args);
      claimed.push(...rows.map((r) => r.id));
      return rows;
    });
    const relay = createOutboxRelay({ store, broker, logger: silentLogger, idleMs: 20 });
    await started(relay);
    try {
      const written = await Promise.all([1, 2, 3].map((n) => writeAndHandOff(store, relay, `h${n}`)));
      await until(async () => (await store.outbox.pendingCount()) === 0);
      expect(got.map((d) => d.messageId).sort()).toEqual(written.map((m) => m.messageId).sort());
      // Polls kept running (idleMs 20) and found nothing: every row was leased to this relay.
      await new Promise((r) => setTimeout(r, 100));
      expect(claimed).toEqual([]);
      expect(got).toHaveLength(3);
    } finally {
      await relay.stop();
      await broker.close();
    }
  });

  it('with the broker down, it asks for no lease, and gives back the lease of a row handed over anyway', async () => {
    const store = await h.open(h.newDatabase());
    const broker = createMemoryBroker(); // not started yet: not connected
    const relay = createOutboxRelay({ store, broker, logger: silentLogger, idleMs: 20 });
    relay.start();
    try {
      expect(relay.leaseForHandOff()).toBeNull();
      // A writer that asked while the broker was up, and commits after it went down.
      const leased = await addLeased(store, 'late', 60_000);
      relay.handOff(leased);
      // The lease is given back: the row is claimable now, not in a minute.
      await until(async () => (await store.outbox.claimBatch(10, new Date(), 1)).length === 1);
      // Once the broker is up, the relay publishes it.
      const got = await collect(broker, QUEUE);
      await broker.start();
      await publishedOnce(got, store, leased.messageId);
    } finally {
      await relay.stop();
      await broker.close();
    }
  });

  it('a row handed over to a relay that never publishes it (a crash) is claimed by another once the lease ends', async () => {
    const store = await h.open(h.newDatabase());
    const broker = createMemoryBroker();
    await broker.start();
    const got = await collect(broker, QUEUE);
    const leaseMs = 400;
    // Written leased to a relay whose process dies before handOff().
    const written = await addLeased(store, 'orphan', leaseMs);
    const other = createOutboxRelay({ store, broker, logger: silentLogger, idleMs: 20 });
    other.start();
    try {
      await new Promise((r) => setTimeout(r, leaseMs / 2));
      expect(got).toEqual([]); // still leased
      await publishedOnce(got, store, written.messageId);
    } finally {
      await other.stop();
      await broker.close();
    }
  });

  it('a row handed over after stop() has its lease ended, so the next relay publishes it at once', async () => {
    const store = await h.open(h.newDatabase());
    const broker = createMemoryBroker();
    await broker.start();
    const got = await collect(broker, QUEUE);
    const first = createOutboxRelay({ store, broker, logger: silentLogger });
    await started(first);
    const lease = first.leaseForHandOff();
    expect(lease).toBe(15_000);
    const written = await addLeased(store, 'after-stop', lease!);
    await first.stop();
    expect(first.leaseForHandOff()).toBeNull();
    first.handOff(written);
    await until(async () => (await store.outbox.claimBatch(10, new Date(), 1)).length === 1);
    const next = createOutboxRelay({ store, broker, logger: silentLogger, idleMs: 20 });
    next.start();
    try {
      await publishedOnce(got, store, written.messageId);
    } finally {
      await next.stop();
      await broker.close();
    }
  });

  it('stops offering leases once maxHandedOff rows wait in memory', async () => {
    const store = await h.open(h.newDatabase());
    const broker = createMemoryBroker();
    await broker.start();
    // Started but its loop is parked on a publish that does not return until released.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const publish = broker.publish.bind(broker);
    vi.spyOn(broker, 'publish').mockImplementation(async (...args) => {
      await gate;
      return publish(...args);
    });
    const relay = createOutboxRelay({ store, broker, logger: silentLogger, maxHandedOff: 2, batchSize: 1 });
    await started(relay);
    try {
      await writeAndHandOff(store, relay, 'a'); // taken by the loop, parked on the gate
      await until(() => vi.mocked(broker.publish).mock.calls.length === 1);
      await writeAndHandOff(store, relay, 'b');
      await writeAndHandOff(store, relay, 'c');
      expect(relay.leaseForHandOff()).toBeNull();
      release();
      await until(async () => (await store.outbox.pendingCount()) === 0);
      expect(relay.leaseForHandOff()).toBe(15_000);
    } finally {
      await relay.stop();
      await broker.close();
    }
  });

  it('leaves rows in the outbox while the in-process queue is full, and publishes them as the worker takes some', async () => {
    const store = await h.open(h.newDatabase());
    const broker = createMemoryBroker({ maxBacklog: 5 });
    await broker.start();
    const relay = createOutboxRelay({ store, broker, logger: silentLogger, idleMs: 20 });
    relay.start();
    try {
      const ids = Array.from({ length: 12 }, () => uid('full'));
      for (const messageId of ids) await store.outbox.add({ destination: QUEUE, messageId, payload: {} });
      relay.notify();
      await until(async () => (await broker.queueDepth(QUEUE)) === 5);
      // Polls keep running (idleMs 20): nothing more goes into memory, the rest stays durable and unsent.
      await new Promise((r) => setTimeout(r, 150));
      expect(await broker.queueDepth(QUEUE)).toBe(5);
      expect(await store.outbox.pendingCount()).toBe(7);
      expect(broker.room!()).toBe(0);
      // A full queue takes no hand-off either: an accept then writes its row available, for a claim.
      expect(relay.leaseForHandOff()).toBeNull();

      const got = await collect(broker, QUEUE);
      await until(() => got.length === 12);
      expect(got.map((d) => d.messageId).sort()).toEqual([...ids].sort());
      await until(async () => (await store.outbox.pendingCount()) === 0);
      expect(relay.leaseForHandOff()).toBe(15_000);
    } finally {
      await relay.stop();
      await broker.close();
    }
  });

  // Hand-offs go first and claims only when none wait; under steady load that list never empties, so rows
  // only a claim takes (written without a lease, failed tries, webhook events, sweeper rows, a dead
  // process's rows) waited as long as the load lasted. A claim that is due now alternates with hand-offs.
  it('publishes a row only a claim can take within a poll or two, however busy the hand-off is', async () => {
    const store = await h.open(h.newDatabase());
    const broker = createMemoryBroker({ maxBacklog: 1_000_000 });
    await broker.start();
    const got = await collect(broker, QUEUE);
    const relay = createOutboxRelay({ store, broker, logger: silentLogger, idleMs: 100 });
    relay.start();
    let writing = true;
    let handedOver = 0;
    // Steady load: writers hand over one row after another, as accepted refunds do.
    const writers = Array.from({ length: 4 }, async () => {
      while (writing) {
        const lease = relay.leaseForHandOff();
        const held = leased({ destination: QUEUE, messageId: uid('load'), payload: {} }, lease ?? 0);
        const row = await store.outbox.add(held.message);
        if (lease !== null) relay.handOff(held.handOff(row.id));
        else relay.notify();
        handedOver++;
      }
    });
    try {
      // Until the load is steady: a fixed wait was too short for 100 rows on a busy machine.
      await until(() => handedOver > 100, 15_000);
      // A row written available (no lease): only a claim publishes it.
      await store.outbox.add({ destination: QUEUE, messageId: 'claim-only', payload: {} });
      relay.notify();
      const handedOverBefore = handedOver;
      const published = await until(() => got.some((d) => d.messageId === 'claim-only'), 3_000).then(
        () => true,
        () => false,
      );
      expect({ published, loadWasRunning: handedOver > handedOverBefore }).toEqual({
        published: true,
        loadWasRunning: true,
      });
    } finally {
      writing = false;
      await Promise.all(writers);
      await relay.stop();
      await broker.close();
    }
  }, 30_000);

  // A relay further behind than the lease (a slow broker, confirms slow to come, many rows queued) held rows whose
  // lease ran out: another relay claimed and published them, and then this one published them again.
  it('a relay further behind than the lease keeps the leases of the rows it holds: another relay publishes none of them again', async () => {
    const options = h.newDatabase();
    const store = await h.open(options);
    const otherStore = await h.open(options); // another process's connection to the same database
    const broker = createMemoryBroker();
    await broker.start();
    const got = await collect(broker, QUEUE);
    const leaseMs = 1_500;
    const { gate, open: release } = gated();
    const slow = heldBack(broker, gate);
    const relay = createOutboxRelay({ store, broker: slow, logger: silentLogger, leaseMs, idleMs: 20 });
    const other = createOutboxRelay({ store: otherStore, broker, logger: silentLogger, leaseMs, idleMs: 20 });
    // Two rows a claim takes: in flight, the broker not confirming them.
    const claimed = [uid('claimed'), uid('claimed')];
    for (const messageId of claimed) await store.outbox.add({ destination: QUEUE, messageId, payload: {} });
    relay.start();
    try {
      await until(() => slow.publishes === 2);
      // Two rows handed over meanwhile: they wait in memory behind those.
      const handed = [
        await writeAndHandOff(store, relay, 'waiting'),
        await writeAndHandOff(store, relay, 'waiting'),
      ];
      other.start();
      // Three leases long: every lease the rows were given has run out by now.
      await sleep(3 * leaseMs);
      expect(got.map((d) => d.messageId)).toEqual([]);

      release();
      const all = [...claimed, ...handed.map((m) => m.messageId)].sort();
      await until(() => slow.publishes === 4 && got.length >= all.length);
      await until(async () => (await store.outbox.pendingCount()) === 0);
      await sleep(200); // a late duplicate would be in by now
      expect(got.map((d) => d.messageId).sort()).toEqual(all);
    } finally {
      release();
      await relay.stop();
      await other.stop();
      await broker.close();
    }
  }, 30_000);

  // The common path, a row handed over and published at once, costs no statement more than before.
  it('renews no lease of rows published within it', async () => {
    const store = await h.open(h.newDatabase());
    const broker = createMemoryBroker();
    await broker.start();
    const got = await collect(broker, QUEUE);
    const extendLeases = vi.spyOn(store.outbox, 'extendLeases');
    // Rows held over a third of it would be renewed: a generous bound for a publish on a busy machine.
    const leaseMs = 3_000;
    const relay = createOutboxRelay({ store, broker, logger: silentLogger, leaseMs, idleMs: 20 });
    await started(relay);
    try {
      for (let n = 0; n < 5; n++) {
        await writeAndHandOff(store, relay, 'prompt');
        await until(() => got.length === n + 1);
        await sleep(leaseMs / 10);
      }
      await sleep(leaseMs); // each renewal timer the hand-offs armed has fired by now
      expect(got).toHaveLength(5);
      expect(extendLeases).not.toHaveBeenCalled();
    } finally {
      await relay.stop();
      await broker.close();
    }
  }, 30_000);

  it('a held row whose lease another relay took meanwhile is dropped from memory, not published again', async () => {
    const store = await h.open(h.newDatabase());
    const broker = createMemoryBroker();
    await broker.start();
    const got = await collect(broker, QUEUE);
    const leaseMs = 1_500;
    const { gate, open: release } = gated();
    const slow = heldBack(broker, gate);
    const relay = createOutboxRelay({ store, broker: slow, logger: silentLogger, leaseMs, batchSize: 1 });
    await started(relay);
    try {
      await writeAndHandOff(store, relay, 'first'); // taken by the loop, its publish held back
      await until(() => slow.publishes === 1);
      const waiting = await writeAndHandOff(store, relay, 'second'); // waits in memory behind it
      // Another relay took the rows (its clock ahead, or this process stalled past the lease) and published them.
      const taken = await store.outbox.claimBatch(10, new Date(Date.now() + 2 * leaseMs), 60_000);
      expect(taken.map((m) => m.messageId)).toContain(waiting.messageId);
      for (const m of taken) await broker.publish({ queue: QUEUE }, m.payload, { messageId: m.messageId });
      await store.outbox.markSent(taken.map((m) => m.id));
      await until(() => got.length === taken.length);

      // Past the point where this relay would have renewed the waiting row's lease, and found it gone.
      await sleep(2 * leaseMs);
      release();
      // The row in flight when its lease was lost does go out again (it was on its way to the broker); the
      // waiting one does not.
      await until(() => got.length >= taken.length + 1);
      await sleep(300); // a publish of the waiting row would be in by now
      expect(got.filter((d) => d.messageId === waiting.messageId)).toHaveLength(1);
      expect(slow.publishes).toBe(1);
    } finally {
      release();
      await relay.stop();
      await broker.close();
    }
  }, 30_000);
});
