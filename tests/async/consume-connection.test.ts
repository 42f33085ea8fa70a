/**
 * During a resource alarm (memory, disk) RabbitMQ blocks the connections that publish: it stops reading them until
 * the alarm ends. The driver published and consumed on one connection, so once anything published on it (the outbox
 * relay, a handler's retry copy) the worker's acks waited too: with the prefetch used up by unacked deliveries,
 * RabbitMQ delivered nothing more, and the backlog that could clear the alarm was not drained. Consuming and acking
 * now have a connection of their own, which never publishes and which RabbitMQ therefore never blocks.
 *
 * The alarm is simulated by a proxy that, as RabbitMQ, blocks only a connection that publishes during it
 * (tests/queue/support/alarm-proxy.ts): a real one is machine-wide and would stop the other suites' publishers.
 */
import { describe, expect, it } from 'vitest';
import { queueFamily, type Delivery, type Outcome } from '../../src/queue/index.js';
import { eventually, openAdmin } from '../queue/support/rabbit.js';
import { alarmRig, noteAndAck, rabbitFile } from '../queue/support/rigs.js';

const rabbit = await rabbitFile('rq-consume-conn', 'consume connection');
const filePrefix = rabbit.prefix;

describe.skipIf(!rabbit.ok)('consuming during a resource alarm that blocks publishing', () => {
  it('messages are still delivered and acked while the publishing connection is blocked', async () => {
    const { proxy, names, broker, close } = await alarmRig(`${filePrefix}.1`, { blocks: 'publishers' });
    const admin = await openAdmin();
    try {
      await broker.start();
      const seen: string[] = [];
      await broker.consume(names.requests, noteAndAck(seen), { prefetch: 1, maxAttempts: 1 });
      proxy.block();
      // What the relay would do meanwhile: an outcome message, the publish RabbitMQ blocks the connection for.
      const publishing = broker.publish({ queue: names.responses }, { n: 0 }, { messageId: 'outcome-1' });
      publishing.catch(() => {});
      await eventually(() => broker.room?.() === 0, 'the publishing connection blocked');

      // Other services' requests (their connections are not blocked): one at a time, as the prefetch allows, each
      // delivered only once the one before was acked.
      const ch = await admin.channel();
      for (const n of [1, 2, 3])
        ch.sendToQueue(names.requests, Buffer.from(`{"n":${n}}`), { messageId: `during-${n}` });
      await eventually(() => seen.length === 3, 'all three delivered during the alarm');
      expect(seen).toEqual(['during-1', 'during-2', 'during-3']);
      expect(broker.room?.()).toBe(0); // still during the alarm
      // The queue depth (/metrics) is asked on the connection RabbitMQ still reads: the backlog is seen draining.
      ch.sendToQueue(names.responses, Buffer.from('{"n":4}'), { messageId: 'for-others-1' });
      await eventually(
        async () => (await broker.queueDepth(names.responses)) === 1,
        'the depth of a queue during the alarm',
      );

      // Closed during the alarm: had an ack not reached RabbitMQ, its message would be back in the queue.
      await broker.close();
      expect(proxy.blockedConnections()).toBe(0);
      expect((await ch.checkQueue(names.requests)).messageCount).toBe(0);
    } finally {
      await admin.conn.close();
      await close();
    }
  }, 30_000);

  // A handler's retry copy goes out on the publishing connection and waits there for the alarm to end; the ack of its
  // message waits for the copy's confirm (else the message could be lost, or handled twice). Only that ack waits.
  it("a retry copy waiting for the alarm holds back its own message's ack, not the others'", async () => {
    const { proxy, names, broker, close } = await alarmRig(`${filePrefix}.2`, {
      blocks: 'publishers',
      broker: { confirmTimeoutMs: 200, retryDelaysMs: [60_000] },
    });
    const admin = await openAdmin();
    try {
      await broker.start();
      const seen: Delivery[] = [];
      const consumer = await broker.consume(
        names.requests,
        async (d): Promise<Outcome> => {
          seen.push(d);
          return d.messageId === 'retry-me' ? { kind: 'retry', reason: 'Stripe timed out' } : { kind: 'ack' };
        },
        { prefetch: 2, maxAttempts: 3 },
      );
      proxy.block();
      const ch = await admin.channel();
      ch.sendToQueue(names.requests, Buffer.from('{"n":0}'), { messageId: 'retry-me' });
      await eventually(() => broker.room?.() === 0, 'the copy blocking the publishing connection');
      for (const n of [1, 2, 3])
        ch.sendToQueue(names.requests, Buffer.from(`{"n":${n}}`), { messageId: `ok-${n}` });
      // Prefetch 2, one of them held by the message whose copy waits: the other three pass one by one.
      await eventually(() => seen.length === 4, 'the other messages delivered during the alarm');
      // Several confirm timeouts' worth of alarm: the copy keeps waiting, its message is not given back meanwhile.
      await new Promise((r) => setTimeout(r, 1_000));
      expect(seen.map((d) => d.messageId)).toEqual(['retry-me', 'ok-1', 'ok-2', 'ok-3']);

      proxy.unblock();
      const [level] = queueFamily(names.requests, names, [60_000]).levels;
      const delayQueue = level?.queue ?? '';
      await eventually(
        async () => (await ch.checkQueue(delayQueue)).messageCount === 1,
        'the copy in the delay queue',
      );
      await consumer.cancel(); // waits for the handler of retry-me to ack once the copy is confirmed
      await broker.close();
      expect(seen.map((d) => d.messageId)).toEqual(['retry-me', 'ok-1', 'ok-2', 'ok-3']);
      expect((await ch.checkQueue(names.requests)).messageCount).toBe(0);
      expect((await ch.checkQueue(delayQueue)).messageCount).toBe(1);
    } finally {
      await admin.conn.close();
      await close();
    }
  }, 30_000);
});
