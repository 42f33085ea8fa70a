/**
 * Outbox relays of several processes, one of which pauses (SIGSTOP, a long garbage collection, a virtual machine
 * suspended) while it holds a row, for longer than the row's lease. Another relay takes the row over once the lease
 * has run out and publishes it: the paused one, resuming, cannot call back a publish already on its way, but what it
 * then tells the store about the row (its publish failed, or it gives the row back as it stops) concerns the lease it
 * held, not the one the other relay holds now. Written over the other's lease, it made the row claimable again
 * while that relay was still publishing it, and a third relay published it once more.
 */
import { expect, it, vi } from 'vitest';
import { createMemoryBroker } from '../../src/queue/memory-broker.js';
import { createOutboxRelay, leased, type OutboxRelay } from '../../src/queue/outbox-relay.js';
import type { Broker, Delivery } from '../../src/queue/types.js';
import type { Store } from '../../src/store/index.js';
import { describeStore, gated, silentLogger, uid } from './harness.js';
import { collect } from './relay-support.js';

const QUEUE = 'stripe_refund_requests';

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 8_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `broker` as one process's relay sees it: each publish first runs `before` (which may wait, or throw). */
function through(
  broker: Broker,
  before: () => Promise<void>,
): Broker & { readonly publishes: number; readonly published: number } {
  let publishes = 0;
  let published = 0;
  return new Proxy(broker, {
    get(target, prop) {
      if (prop === 'publishes') return publishes;
      if (prop === 'published') return published;
      if (prop === 'publish') {
        return async (...args: Parameters<Broker['publish']>) => {
          publishes++;
          await before();
          await target.publish(...args);
          published++;
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as Broker & { readonly publishes: number; readonly published: number };
}

describeStore('multi-process: an outbox relay paused past its lease', (h) => {
  /** Three processes' stores on one database, a broker and what its queue received. */
  async function setUp() {
    const options = h.newDatabase();
    const stores = [await h.open(options), await h.open(options), await h.open(options)] as const;
    const broker = createMemoryBroker();
    await broker.start();
    const got = await collect(broker, QUEUE);
    return { stores, broker, got };
  }

  /**
   * Every message published so far, in the order the queue received them: a last one published after them all
   * (the queue hands messages over in order) says when the consumer has had them.
   */
  async function received(broker: Broker, got: Delivery[]): Promise<string[]> {
    const last = uid('last');
    await broker.publish({ queue: QUEUE }, {}, { messageId: last });
    await until(() => got.some((d) => d.messageId === last));
    return got.map((d) => d.messageId).filter((id) => id !== last);
  }

  /** Relay C, whose clock and process are fine: runs until the outbox has nothing left to send. */
  async function thirdRelayDrains(store: Store, broker: Broker, relays: OutboxRelay[]): Promise<void> {
    const relay = createOutboxRelay({ store, broker, logger: silentLogger, idleMs: 10 });
    relays.push(relay);
    relay.start();
    let claims = 0;
    const claim = store.outbox.claimBatch.bind(store.outbox);
    vi.spyOn(store.outbox, 'claimBatch').mockImplementation(async (...args) => {
      claims++;
      return claim(...args);
    });
    await until(() => claims >= 5);
  }

  it('a publish that fails on resuming leaves the row to the relay that took it over: published once more, not twice', async () => {
    const { stores, broker, got } = await setUp();
    const [a, b, c] = stores;
    const relays: OutboxRelay[] = [];
    const paused = gated();
    const taken = gated();
    try {
      const row = await a.outbox.add({ destination: QUEUE, messageId: uid('paused'), payload: { n: 1 } });
      // A claims the row with a short lease and is paused mid-publish; its lease renewals are paused with it. On
      // resuming its publish fails (the broker closed its connection meanwhile).
      const extend = a.outbox.extendLeases.bind(a.outbox);
      vi.spyOn(a.outbox, 'extendLeases').mockImplementation(async (...args) => {
        await paused.gate;
        return extend(...args);
      });
      const brokerA = through(broker, async () => {
        await paused.gate;
        throw new Error('connection closed while paused');
      });
      const relayA = createOutboxRelay({
        store: a,
        broker: brokerA,
        logger: silentLogger,
        leaseMs: 300,
        backoffMs: 1,
      });
      relays.push(relayA);
      relayA.start();
      await until(() => brokerA.publishes === 1);
      // B claims it once A's lease has run out, and is publishing it (the broker slow to confirm).
      const brokerB = through(broker, () => taken.gate);
      const relayB = createOutboxRelay({ store: b, broker: brokerB, logger: silentLogger, idleMs: 10 });
      relays.push(relayB);
      relayB.start();
      await until(() => brokerB.publishes === 1);
      // A resumes, and stops: once its batch is done with.
      paused.open();
      await relayA.stop();
      await thirdRelayDrains(c, broker, relays);
      taken.open();
      await until(() => brokerB.published === 1);
      await until(async () => (await c.outbox.pendingCount()) === 0);
      expect(await received(broker, got)).toEqual([row.messageId]);
    } finally {
      paused.open();
      taken.open();
      for (const r of relays) await r.stop();
      await broker.close();
    }
  });

  it('a row handed over after a pause past its lease, to a relay stopped meanwhile, stays with the relay that took it over', async () => {
    const { stores, broker, got } = await setUp();
    const [a, b, c] = stores;
    const relays: OutboxRelay[] = [];
    const taken = gated();
    try {
      // A's writer asks for a lease, and is paused before its commit is handed over, past the lease.
      const relayA = createOutboxRelay({ store: a, broker, logger: silentLogger, leaseMs: 300 });
      relayA.start();
      // It offers leases once its first read of the database's clock has answered.
      await until(() => relayA.leaseForHandOff() !== null);
      const writing = leased(
        { destination: QUEUE, messageId: uid('late'), payload: { n: 2 } },
        relayA.leaseForHandOff()!,
      );
      const row = await a.outbox.add(writing.message);
      // B claims the row once that lease has run out, and is publishing it.
      const brokerB = through(broker, () => taken.gate);
      const relayB = createOutboxRelay({ store: b, broker: brokerB, logger: silentLogger, idleMs: 10 });
      relays.push(relayB);
      relayB.start();
      await until(() => brokerB.publishes === 1);
      // A resumes: its process is stopping, so the row it is handed is given back.
      const release = vi.spyOn(a.outbox, 'release');
      const extend = vi.spyOn(a.outbox, 'extendLeases');
      await relayA.stop();
      relayA.handOff(writing.handOff(row.id));
      await until(() => release.mock.results.length + extend.mock.results.length > 0);
      await (release.mock.results[0] ?? extend.mock.results[0])!.value;
      await thirdRelayDrains(c, broker, relays);
      taken.open();
      await until(() => brokerB.published === 1);
      await until(async () => (await c.outbox.pendingCount()) === 0);
      expect(await received(broker, got)).toEqual([row.messageId]);
    } finally {
      taken.open();
      for (const r of relays) await r.stop();
      await broker.close();
    }
  });
});
