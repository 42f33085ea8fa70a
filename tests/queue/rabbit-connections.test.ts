/**
 * The RabbitMQ driver publishes on one connection and consumes on another (opened by the first consume()), so that a
 * resource alarm, which blocks connections that publish, never holds back the acks (tests/async/consume-connection
 * .test.ts). Each connection goes and comes back on its own; what a process that depends on both shows meanwhile.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/ops/metrics.js';
import { queueFamily, type Delivery, type Outcome } from '../../src/queue/index.js';
import {
  closeConnectionsNamed,
  eventually,
  gate,
  openAdmin,
  rabbitctl,
  relayRig,
  type RelayRig,
} from './support/rabbit.js';
import { noteAndAck, rabbitFile } from './support/rigs.js';

const rabbit = await rabbitFile('rq-conns', 'rabbitmq connections', true);
const filePrefix = rabbit.prefix;
let counter = 0;
const rigs: RelayRig[] = [];

afterEach(async () => {
  await Promise.all(rigs.splice(0).map((rig) => rig.close()));
});

async function rig(retryDelaysMs = [60_000]) {
  const prefix = `${filePrefix}.${++counter}`;
  // Reconnecting after 4–5 s: long enough to look at the process while one connection is down.
  const r = await relayRig(prefix, {
    maxBackoffMs: 100,
    broker: { retryDelaysMs, reconnect: { initialDelayMs: 5_000, maxDelayMs: 5_000 } },
  });
  rigs.push(r);
  const metrics = createMetrics();
  metrics.attach({ store: r.store, broker: r.broker, topology: r.names });
  const scrape = async () => {
    const text = await metrics.render();
    const value = (series: string) =>
      Number(
        text
          .split('\n')
          .find((line) => line.startsWith(`${series} `))
          ?.split(' ')[1],
      );
    return {
      connected: value('payments_broker_connected'),
      publish: value('payments_broker_connection_up{connection="publish"}'),
      consume: value('payments_broker_connection_up{connection="consume"}'),
    };
  };
  return { ...r, prefix, scrape };
}

async function connectionsNamed(name: string): Promise<number> {
  const out = await rabbitctl('--no-table-headers', 'list_connections', 'client_properties');
  const marker = `{"connection_name",${JSON.stringify(name)}}`;
  return out.split('\n').filter((line) => line.includes(marker)).length;
}

describe.skipIf(!rabbit.ok)('rabbitmq driver: a connection to publish, another to consume', () => {
  it('a process that only publishes has one connection; the first consumer opens the second', async () => {
    const { broker, names, prefix, scrape } = await rig();
    await broker.start();
    await broker.publish({ queue: names.requests }, { n: 1 }, { messageId: 'one-1' });
    expect(await connectionsNamed(prefix)).toBe(1);
    expect(await connectionsNamed(`${prefix}/consume`)).toBe(0);
    expect(await scrape()).toEqual({ connected: 1, publish: 1, consume: NaN });

    const seen: string[] = [];
    await broker.consume(names.requests, noteAndAck(seen), { prefetch: 1, maxAttempts: 1 });
    await eventually(() => seen.includes('one-1'), 'the delivery');
    expect(await connectionsNamed(prefix)).toBe(1);
    expect(await connectionsNamed(`${prefix}/consume`)).toBe(1);
    expect(await scrape()).toEqual({ connected: 1, publish: 1, consume: 1 });

    await broker.close();
    await eventually(async () => (await connectionsNamed(prefix)) === 0, 'the publishing connection closed');
    await eventually(
      async () => (await connectionsNamed(`${prefix}/consume`)) === 0,
      'the consuming connection closed',
    );
  });

  // Both went together before: the channel a message came on closed with the connection, and RabbitMQ handed it out
  // again. Now the consumer stays, and a copy the handler routes waits for the publishing connection to come back:
  // given back at once, the message would come round again and again, each time a failed delivery against the
  // queue's delivery limit, and be dead-lettered within a few seconds of outage.
  it('the publishing connection lost: consuming goes on, a retry copy waits for the reconnect, its message is not handed out again', async () => {
    const { broker, names, prefix, scrape } = await rig();
    const states: boolean[] = [];
    broker.onStateChange((connected) => states.push(connected));
    await broker.start();
    const held = gate();
    const seen: Delivery[] = [];
    const consumer = await broker.consume(
      names.requests,
      async (d): Promise<Outcome> => {
        seen.push(d);
        if (d.messageId !== 'retry-1') return { kind: 'ack' };
        await held.promise;
        return { kind: 'retry', reason: 'Stripe timed out' };
      },
      { prefetch: 2, maxAttempts: 3 },
    );
    const admin = await openAdmin();
    try {
      const ch = await admin.channel();
      ch.sendToQueue(names.requests, Buffer.from('{"n":1}'), { messageId: 'retry-1' });
      await eventually(() => seen.length === 1, 'the first delivery');

      expect(await closeConnectionsNamed(prefix)).toBe(1);
      await eventually(() => states.includes(false), 'the publishing connection noticed lost');
      expect(broker.isConnected()).toBe(false);
      expect(consumer.isSubscribed()).toBe(true);
      expect(await scrape()).toEqual({ connected: 0, publish: 0, consume: 1 });

      held.open(); // its outcome, a retry, needs the publishing connection
      ch.sendToQueue(names.requests, Buffer.from('{"n":2}'), { messageId: 'ok-1' });
      await eventually(() => seen.length === 2, 'a delivery while the publishing connection is down');
      expect(broker.isConnected()).toBe(false); // still down: the copy still waits

      await eventually(() => broker.isConnected(), 'the reconnect', 20_000);
      const [level] = queueFamily(names.requests, names, [60_000]).levels;
      const delayQueue = level?.queue ?? '';
      await eventually(
        async () => (await ch.checkQueue(delayQueue)).messageCount === 1,
        'the copy in the delay queue',
      );
      await consumer.cancel();
      expect(seen.map((d) => d.messageId)).toEqual(['retry-1', 'ok-1']);
      expect((await ch.checkQueue(names.requests)).messageCount).toBe(0);
      expect((await ch.checkQueue(delayQueue)).messageCount).toBe(1);
      expect(states).toEqual([true, false, true]);
    } finally {
      await admin.conn.close();
    }
  }, 40_000);

  it('the consuming connection lost: publishing goes on, the consumer subscribes again once it is back', async () => {
    const { broker, names, prefix, scrape } = await rig();
    const states: boolean[] = [];
    broker.onStateChange((connected) => states.push(connected));
    await broker.start();
    const seen: string[] = [];
    const consumer = await broker.consume(names.requests, noteAndAck(seen), { prefetch: 1, maxAttempts: 1 });
    expect(consumer.isSubscribed()).toBe(true);

    expect(await closeConnectionsNamed(`${prefix}/consume`)).toBe(1);
    await eventually(() => !consumer.isSubscribed(), 'the consuming connection noticed lost');
    expect(await scrape()).toEqual({ connected: 0, publish: 1, consume: 0 });
    // Publishing is not held back: the outbox relay goes on.
    await broker.publish({ queue: names.requests }, { n: 1 }, { messageId: 'during-1' });
    expect(broker.isConnected()).toBe(true);

    await eventually(() => seen.includes('during-1'), 'the delivery once subscribed again', 20_000);
    expect(consumer.isSubscribed()).toBe(true);
    expect(await scrape()).toEqual({ connected: 1, publish: 1, consume: 1 });
    expect(states).toEqual([true]);
  }, 40_000);
});
