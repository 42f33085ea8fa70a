/**
 * The topology the relay publishes to deleted under a live connection. The driver declares its
 * queues and the events exchange only when it (re)connects; no consumer of ours watches the responses queue
 * or the events exchange, so nothing notices they are gone. Every outcome row (responses queue: unroutable)
 * and every webhook event row (events exchange: 404, which also closes the publish channel under the other
 * publishes in flight) then stays in the outbox, retried forever, until the process happens to reconnect.
 */
import { describe, expect, it } from 'vitest';
import { createRabbitBroker } from '../../src/queue/index.js';
import { RABBIT_URL, eventually, openAdmin, relayRig, topologyFor } from '../queue/support/rabbit.js';
import { rabbitFile } from '../queue/support/rigs.js';

const rabbit = await rabbitFile('rq-topo', 'topology deleted');
const filePrefix = rabbit.prefix;

describe.skipIf(!rabbit.ok)('the topology deleted under a live connection', () => {
  it('outcome and event rows still go out: the driver declares its own topology again', async () => {
    const prefix = `${filePrefix}.1`;
    const { names, store, broker, relay, close } = await relayRig(prefix, { maxBackoffMs: 200 });
    const admin = await openAdmin();
    try {
      await broker.start();
      const subscriber = `${prefix}.sub`;
      await broker.bind(subscriber, names.events, '#');
      relay.start();

      const ch = await admin.channel();
      await ch.deleteQueue(names.responses);
      await ch.deleteExchange(names.events);

      await store.outbox.add({ destination: names.responses, messageId: 'outcome-1', payload: { n: 1 } });
      await store.outbox.add({
        destination: `exchange:${names.events}`,
        routingKey: 'charge.refunded',
        messageId: 'event-1',
        payload: { n: 2 },
      });
      relay.notify();
      const pending = await eventually(
        async () => {
          const n = await store.outbox.pendingCount();
          return n === 0 ? 'none' : null;
        },
        'both rows sent',
        10_000,
      ).catch(() => 'still pending');
      expect(pending).toBe('none');
      const depth = async (q: string) => (await (await admin.channel()).checkQueue(q)).messageCount;
      expect(await depth(names.responses)).toBe(1);
      expect(await depth(subscriber)).toBe(1);
    } finally {
      await close();
      await admin.conn.close();
    }
  }, 30_000);

  it('a retry still goes through after its delay queue was deleted', async () => {
    const prefix = `${filePrefix}.2`;
    const names = topologyFor(prefix);
    const broker = createRabbitBroker({
      url: RABBIT_URL,
      topology: names,
      connectionName: prefix,
      retryDelaysMs: [200],
      deliveryLimit: 3,
    });
    const admin = await openAdmin();
    try {
      await broker.start();
      const attempts: number[] = [];
      await broker.consume(
        names.requests,
        async (d) => {
          attempts.push(d.attempt);
          return d.attempt === 0 ? { kind: 'retry', reason: 'transient' } : { kind: 'ack' };
        },
        { prefetch: 1, maxAttempts: 5 },
      );
      const ch = await admin.channel();
      await ch.deleteQueue(`${names.retryPrefix}.200ms`);
      await broker.publish({ queue: names.requests }, { n: 1 }, { messageId: 'retried-1' });
      const done = await eventually(() => attempts.includes(1), 'the retried attempt', 10_000).catch(
        () => false,
      );
      const dlq = (await (await admin.channel()).checkQueue(names.deadLetter)).messageCount;
      expect({ done, dlq }).toEqual({ done: true, dlq: 0 });
    } finally {
      await broker.close();
      await admin.conn.close();
    }
  }, 30_000);
});
