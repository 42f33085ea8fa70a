/**
 * One process under load, among several on one PostgreSQL database: requests (and the refund worker) hold every
 * connection of DATABASE_POOL_SIZE, each waiting on a lock or a slow statement. The outbox relay must still publish
 * the refunds already accepted, and the webhook retry sweep still take the events stored: behind the requests in
 * the pool's line they waited out the connection timeout, failed, slept and tried again, for as long as the load
 * lasted, while the workers of every process had nothing to do and their leases ran out (every row out twice).
 */
import { expect, it } from 'vitest';
import { createMemoryBroker } from '../../src/queue/memory-broker.js';
import { createOutboxRelay } from '../../src/queue/outbox-relay.js';
import { describePostgres, holdEveryConnection, until, silentLogger, uid } from './harness.js';
import { collect } from './relay-support.js';

const QUEUE = 'stripe_refund_requests';
/** Requests' connections, all taken below. */
const POOL_SIZE = 2;

describePostgres('multi-process: background work while requests hold every pooled connection', (h) => {
  it('the outbox relay publishes an accepted refund and marks it sent', async () => {
    const store = await h.openSibling({ poolSize: POOL_SIZE, connectTimeoutMs: 1_000 });
    const written = await store.outbox.add({ destination: QUEUE, messageId: uid('busy'), payload: { n: 1 } });
    const broker = createMemoryBroker();
    await broker.start();
    const got = await collect(broker, QUEUE);
    const relay = createOutboxRelay({ store, broker, logger: silentLogger, idleMs: 20 });
    const release = await holdEveryConnection(h, 'payments', POOL_SIZE, (i) =>
      store.payments.get(`pi_busy_${i}`),
    );
    let sentWhileBusy = false;
    try {
      relay.start();
      const published = await until(() => got.length > 0);
      sentWhileBusy =
        published && (await until(async () => (await store.outbox.pendingCount()) === 0, 3_000));
      expect(got.map((d) => d.messageId)).toEqual([written.messageId]);
    } finally {
      await release();
      await relay.stop();
      await broker.close();
    }
    expect(sentWhileBusy).toBe(true);
  });

  it('the webhook retry sweep claims a stored event and records it applied', async () => {
    const store = await h.openSibling({ poolSize: POOL_SIZE, connectTimeoutMs: 1_000 });
    const eventId = uid('evt');
    expect(
      await store.inbox.insertIfAbsent({ eventId, type: 'charge.refunded', payload: { id: eventId } }),
    ).toBe(true);
    const release = await holdEveryConnection(h, 'payments', POOL_SIZE, (i) =>
      store.payments.get(`pi_busy_${i}`),
    );
    try {
      const claimed = await store.inbox.claimUnprocessed(10);
      expect(claimed.map((e) => e.eventId)).toContain(eventId);
      expect(await store.inbox.markProcessed(eventId)).toBe(true);
    } finally {
      await release();
    }
    expect((await h.store.inbox.get(eventId))?.processedAt).not.toBeNull();
  });
});
