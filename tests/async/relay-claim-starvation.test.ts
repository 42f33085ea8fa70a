/**
 * The relay publishes rows handed over by this process's writers first, and claims from the outbox
 * only once nothing handed over is waiting. Under steady load the hand-off list never empties, so rows that
 * only a claim can take wait for as long as the load lasts: rows written available (the hand-off bound was
 * reached, or the broker was briefly down), retries after a failed publish, webhook events, sweeper rows, and
 * the rows of another process that died holding their lease.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { createMemoryBroker } from '../../src/queue/memory-broker.js';
import { createOutboxRelay, leased } from '../../src/queue/outbox-relay.js';
import type { Delivery } from '../../src/queue/types.js';
import { createStore } from '../../src/store/index.js';

const QUEUE = 'stripe_refund_requests';

it('a row only a claim can take is published within a poll or two, however busy the hand-off is', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'rq-starve-'));
  const store = await createStore({ url: `sqlite:${join(dir, 'db.sqlite')}`, sqliteSynchronous: 'NORMAL' });
  const broker = createMemoryBroker({ maxBacklog: 1_000_000 });
  await broker.start();
  const got: Delivery[] = [];
  await broker.consume(
    QUEUE,
    async (d) => {
      got.push(d);
      return { kind: 'ack' };
    },
    { prefetch: 100, maxAttempts: 1 },
  );
  const relay = createOutboxRelay({ store, broker, logger: pino({ level: 'silent' }), idleMs: 100 });
  relay.start();
  let writing = true;
  let handedOver = 0;
  // Steady load: writers hand over one row after another, as accepted refunds do.
  const writers = Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; writing; i++) {
      const lease = relay.leaseForHandOff();
      const held = leased({ destination: QUEUE, messageId: `load-${w}-${i}`, payload: {} }, lease ?? 0);
      const row = await store.outbox.add(held.message);
      if (lease !== null) relay.handOff(held.handOff(row.id));
      else relay.notify();
      handedOver++;
    }
  });
  try {
    await new Promise((r) => setTimeout(r, 300));
    // A row written available (no lease): only a claim publishes it.
    await store.outbox.add({ destination: QUEUE, messageId: 'claim-only', payload: {} });
    relay.notify();
    const deadline = Date.now() + 3_000;
    while (!got.some((d) => d.messageId === 'claim-only') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    const published = got.some((d) => d.messageId === 'claim-only');
    expect({ published, loadWasRunning: handedOver > 100 }).toEqual({
      published: true,
      loadWasRunning: true,
    });
  } finally {
    writing = false;
    await Promise.all(writers);
    await relay.stop();
    await broker.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);
