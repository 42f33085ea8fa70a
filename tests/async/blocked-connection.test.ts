/**
 * RabbitMQ blocks a connection that publishes during a resource alarm (memory, disk): it stops
 * reading the socket and announces it with connection.blocked. The driver only logged it. The outbox relay
 * kept publishing: each publish waited for a confirm that could not come, timed out, and the row was tried
 * again after its backoff, each try leaving one more copy of the message in the connection's write buffer.
 * Over a long alarm that buffer grows without bound (every waiting row, once per backoff), and when the
 * alarm clears every copy reaches the queue at once.
 *
 * RabbitMQ is shared, so its alarm is simulated (tests/queue/support/alarm-proxy.ts): a proxy between the driver
 * and RabbitMQ stops forwarding what the driver sends (as RabbitMQ stops reading a blocked connection) and injects
 * connection.blocked / connection.unblocked frames at frame boundaries. Here it blocks every connection of the
 * driver at once, its consuming one too (RabbitMQ would not: tests/async/consume-connection.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { queueFamily, type Delivery, type Outcome } from '../../src/queue/index.js';
import { eventually, openAdmin } from '../queue/support/rabbit.js';
import { alarmRig, noteAndAck, rabbitFile } from '../queue/support/rigs.js';

const rabbit = await rabbitFile('rq-blocked', 'blocked connection');
const filePrefix = rabbit.prefix;

describe.skipIf(!rabbit.ok)('a RabbitMQ resource alarm (connection.blocked)', () => {
  it('the relay stops handing the broker copies of waiting rows, so nothing piles up in memory', async () => {
    const { proxy, names, store, broker, relay, close } = await alarmRig(`${filePrefix}.1`, {
      broker: { confirmTimeoutMs: 200 },
    });
    try {
      await broker.start();
      expect(broker.isConnected()).toBe(true);
      relay.start();

      proxy.block();
      await new Promise((r) => setTimeout(r, 200)); // the notice reaches the driver
      await store.outbox.add({ destination: names.requests, messageId: 'waiting-1', payload: { n: 1 } });
      relay.notify();
      // Three seconds of alarm: with the relay's short timeouts, a dozen tries of the one waiting row.
      await new Promise((r) => setTimeout(r, 3_000));
      expect(await store.outbox.pendingCount()).toBe(1);

      proxy.unblock();
      await eventually(async () => (await store.outbox.pendingCount()) === 0, 'the row sent after the alarm');
      await new Promise((r) => setTimeout(r, 500)); // copies still on their way
      const admin = await openAdmin();
      let copies: number;
      try {
        const ch = await admin.channel();
        copies = (await ch.checkQueue(names.requests)).messageCount;
      } finally {
        await admin.conn.close();
      }
      // Each copy beyond the first was one more message buffered in memory while the alarm lasted.
      expect(copies).toBe(1);
    } finally {
      await close();
    }
  }, 30_000);

  // RabbitMQ reads nothing more of a blocked connection, so any call that waits for its answer (opening a channel,
  // basic.cancel, channel.close) waits for the alarm to end: a /metrics scrape (queue depth) or a SIGTERM would hang
  // for as long as the alarm lasts.
  it('queue depth is unknown during the alarm, not a wait for its end', async () => {
    const { proxy, names, broker, close } = await alarmRig(`${filePrefix}.2`);
    try {
      await broker.start();
      expect(await broker.queueDepth(names.requests)).toBe(0);
      proxy.block();
      await eventually(() => broker.room?.() === 0, 'the notice to reach the driver');
      expect(await answeredWhileBlocked(broker.queueDepth(names.requests))).toBeNull();
      proxy.unblock();
      await eventually(() => broker.room?.() !== 0, 'the end of the alarm');
      expect(await broker.queueDepth(names.requests)).toBe(0);
    } finally {
      await close();
    }
  }, 30_000);

  it('close() during the alarm does not wait for its end; a message whose ack it could not send waits in the queue', async () => {
    const { proxy, names, broker, close } = await alarmRig(`${filePrefix}.3`);
    try {
      await broker.start();
      const seen: string[] = [];
      await broker.consume(names.requests, noteAndAck(seen), { prefetch: 1, maxAttempts: 1 });
      proxy.block();
      await eventually(() => broker.room?.() === 0, 'the notice to reach the driver');
      // Another service's publish (its connection is not blocked) is delivered; the ack waits with the rest.
      const admin = await openAdmin();
      try {
        const ch = await admin.channel();
        ch.sendToQueue(names.requests, Buffer.from('{"n":2}'), { messageId: 'during-alarm' });
        await eventually(() => seen.includes('during-alarm'), 'the delivery during the alarm');
        expect(await answeredWhileBlocked(broker.close().then(() => 'closed'))).toBe('closed');
        expect(broker.isConnected()).toBe(false);
        // Its ack never reached RabbitMQ: the message is not lost, but waits in the queue for the next worker.
        await eventually(
          async () => (await ch.checkQueue(names.requests)).messageCount === 1,
          'the unacked message back in its queue',
        );
      } finally {
        await admin.conn.close();
      }
    } finally {
      await close();
    }
  }, 30_000);
  // A retry or dead-letter copy a handler routes during the alarm waits in the write buffer like any publish. Its
  // confirm used to time out: the message was then given back (nack) as well, and once the alarm ended RabbitMQ took
  // both, the copy and the message again: the refund went through the worker twice.
  it('a copy routed during the alarm waits for it to end; the message is not given back as well', async () => {
    const { proxy, names, broker, close } = await alarmRig(`${filePrefix}.4`, {
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
          return { kind: 'retry', reason: 'Stripe timed out' };
        },
        { prefetch: 1, maxAttempts: 3 },
      );
      proxy.block();
      await eventually(() => broker.room?.() === 0, 'the notice to reach the driver');
      const ch = await admin.channel();
      ch.sendToQueue(names.requests, Buffer.from('{"n":1}'), { messageId: 'during-alarm' });
      await eventually(() => seen.length === 1, 'the delivery during the alarm');
      // Several confirm timeouts' worth of alarm.
      await new Promise((r) => setTimeout(r, 1_500));
      proxy.unblock();
      const [level] = queueFamily(names.requests, names, [60_000]).levels;
      const delayQueue = level?.queue ?? '';
      await eventually(
        async () => (await ch.checkQueue(delayQueue)).messageCount >= 1,
        'the copy in the delay queue',
      );
      // Time for a message given back to come round again (it would at once), then stop the consumer.
      await new Promise((r) => setTimeout(r, 1_000));
      await consumer.cancel();
      expect(seen.map((d) => d.messageId)).toEqual(['during-alarm']);
      expect((await ch.checkQueue(delayQueue)).messageCount).toBe(1);
      expect((await ch.checkQueue(names.requests)).messageCount).toBe(0);
    } finally {
      await admin.conn.close();
      await close();
    }
  }, 30_000);
});

const STILL_WAITING = Symbol('still waiting');

/** What `work` settles to while the alarm lasts: STILL_WAITING if it is still waiting after a while. */
async function answeredWhileBlocked<T>(work: Promise<T>): Promise<T | typeof STILL_WAITING> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const waited = new Promise<typeof STILL_WAITING>((resolve) => {
    timer = setTimeout(() => resolve(STILL_WAITING), 5_000);
  });
  try {
    return await Promise.race([work, waited]);
  } finally {
    clearTimeout(timer);
  }
}
