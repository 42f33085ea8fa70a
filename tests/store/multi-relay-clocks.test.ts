/**
 * Outbox relays of several processes on one PostgreSQL database, one of whose clocks is a minute off. A lease is a
 * time written into the row (`available_at`) and read by every other relay: judged by a clock that is ahead, every
 * lease another relay holds looks ended, and rows written by a clock that is behind are leased into the past. Either
 * way each row a relay had in hand went out twice, once by it and once by whichever relay claimed it. The relays go
 * by PostgreSQL's clock instead.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { createMemoryBroker } from '../../src/queue/memory-broker.js';
import { createOutboxRelay, leased } from '../../src/queue/outbox-relay.js';
import { describePostgres, silentLogger, skewClock, uid } from './harness.js';
import { collect } from './relay-support.js';

const QUEUE = 'stripe_refund_requests';
const SKEW_MS = 60_000;
/** The relay's default lease. */
const LEASE_MS = 15_000;

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 8_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describePostgres('multi-process: outbox relays whose clocks differ', (h) => {
  it('a relay whose clock is a minute ahead leaves alone a row another relay holds, and publishes its own', async () => {
    const options = h.newDatabase();
    const store = await h.open(options);
    const other = await h.open(options);
    // Another process's relay holds this row: handed over by its writer with a lease of 15 s (by a right clock).
    const held = await store.outbox.add({
      destination: QUEUE,
      messageId: uid('held'),
      payload: { n: 1 },
      availableAt: new Date(Date.now() + LEASE_MS),
    });
    skewClock(SKEW_MS);
    const broker = createMemoryBroker();
    await broker.start();
    const got = await collect(broker, QUEUE);
    let claims = 0;
    const claim = store.outbox.claimBatch.bind(store.outbox);
    vi.spyOn(store.outbox, 'claimBatch').mockImplementation(async (...args) => {
      claims++;
      return claim(...args);
    });
    const relay = createOutboxRelay({ store, broker, logger: silentLogger, idleMs: 20 });
    relay.start();
    try {
      // A row this process writes available at once (by its own clock) goes out without waiting for the skew.
      const own = await store.outbox.add({ destination: QUEUE, messageId: uid('own'), payload: { n: 2 } });
      relay.notify();
      await until(() => got.some((d) => d.messageId === own.messageId));
      const after = claims;
      await until(() => claims >= after + 5);
      expect(got.map((d) => d.messageId)).toEqual([own.messageId]);
      // Still unsent, under the lease its relay gave it: claimable by any relay once that lease has ended.
      const afterLease = new Date(Date.parse(held.availableAt) + 1);
      expect((await other.outbox.claimBatch(10, afterLease, 1)).map((m) => m.id)).toEqual([held.id]);
    } finally {
      await relay.stop();
      await broker.close();
    }
  });

  it('rows a relay whose clock is a minute behind holds are not taken by another relay before their lease ends', async () => {
    const options = h.newDatabase();
    const store = await h.open(options);
    const other = await h.open(options);
    skewClock(-SKEW_MS);
    const broker = createMemoryBroker();
    await broker.start();
    // The broker takes a while to confirm: the relay holds the row meanwhile.
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const publish = broker.publish.bind(broker);
    vi.spyOn(broker, 'publish').mockImplementation(async (...args) => {
      await gate;
      return publish(...args);
    });
    const got = await collect(broker, QUEUE);
    let claims = 0;
    const claim = store.outbox.claimBatch.bind(store.outbox);
    vi.spyOn(store.outbox, 'claimBatch').mockImplementation(async (...args) => {
      claims++;
      return claim(...args);
    });
    const relay = createOutboxRelay({ store, broker, logger: silentLogger, idleMs: 20 });
    relay.start();
    try {
      // Running: it has looked for rows to publish.
      await until(() => claims > 0);
      // What a refund accept does: write the row leased to this process's relay, hand it over after the commit.
      const message = { destination: QUEUE, messageId: uid('behind'), payload: { n: 3 } };
      const writing = leased(message, relay.leaseForHandOff()!);
      const row = await store.outbox.add(writing.message);
      relay.handOff(writing.handOff(row.id));
      // Another process's relay, whose clock is right, claims.
      const taken = await other.outbox.claimBatch(10, new Date(Date.now() + SKEW_MS));
      expect(taken.map((m) => m.messageId)).not.toContain(message.messageId);
      open();
      await until(() => got.length === 1);
      await until(async () => (await store.outbox.pendingCount()) === 0);
      expect(got.map((d) => d.messageId)).toEqual([message.messageId]);
    } finally {
      open();
      await relay.stop();
      await broker.close();
    }
  });

  it('a relay whose clock is stepped a minute ahead while it runs leaves alone a row another relay holds', async () => {
    const options = h.newDatabase();
    const store = await h.open(options);
    const other = await h.open(options);
    const broker = createMemoryBroker();
    await broker.start();
    const got = await collect(broker, QUEUE);
    let claims = 0;
    const claim = store.outbox.claimBatch.bind(store.outbox);
    vi.spyOn(store.outbox, 'claimBatch').mockImplementation(async (...args) => {
      claims++;
      return claim(...args);
    });
    const relay = createOutboxRelay({ store, broker, logger: silentLogger, idleMs: 20 });
    relay.start();
    try {
      await until(() => claims > 0);
      // Another process's relay holds this row, under a lease of 15 s by a right clock.
      const held = await other.outbox.add({
        destination: QUEUE,
        messageId: uid('held'),
        payload: { n: 1 },
        availableAt: new Date(Date.now() + LEASE_MS),
      });
      // This process's clock is stepped (NTP, an operator): the relay keeps claiming.
      skewClock(SKEW_MS);
      const after = claims;
      await until(() => claims >= after + 10);
      expect(got).toEqual([]);
      const afterLease = new Date(Date.parse(held.availableAt) + 1);
      expect((await other.outbox.claimBatch(10, afterLease, 1)).map((m) => m.id)).toEqual([held.id]);
    } finally {
      await relay.stop();
      await broker.close();
    }
  });
});
