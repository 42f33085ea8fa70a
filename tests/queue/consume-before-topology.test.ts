/**
 * consume() before the topology is there. A worker started while RabbitMQ is not up yet (a fresh `docker compose
 * up`) subscribes once RabbitMQ comes: its consuming connection, opened by consume(), can come up before the
 * publishing connection's next reconnect, which is what declared the queues. It now declares them too, so the
 * attach finds its queue; before, checkQueue answered 404, consume() rejected and the worker's start failed, though
 * RabbitMQ was up. And a queue of ours missing when consume() attaches (deleted under a consuming connection that is
 * already up) is declared again and subscribed to, instead of consume() rejecting with the 404.
 *
 * RabbitMQ is made unreachable by a TCP proxy in front of it that refuses connections until the test lets them
 * through (the shared broker itself is never stopped).
 */
import { describe, expect, it } from 'vitest';
import { createRabbitBroker, type Broker } from '../../src/queue/index.js';
import { eventually, openAdmin, RABBIT_URL, topologyFor } from './support/rabbit.js';
import { frontProxy, noteAndAck, rabbitFile } from './support/rigs.js';

const rabbit = await rabbitFile('consume-first', 'consume before the topology');
const prefix = rabbit.prefix;

/** Refuses every connection until open() is called; passes them on from then. */
async function gatedProxy(target: URL) {
  let up = false;
  const proxy = await frontProxy(target, (client, open) => {
    if (!up) {
      client.destroy();
      return;
    }
    client.pipe(open());
  });
  return {
    url: proxy.url,
    open: () => {
      up = true;
    },
    close: proxy.close,
  };
}

describe.skipIf(!rabbit.ok)('rabbitmq driver: a worker started before RabbitMQ is up', () => {
  it('subscribes once RabbitMQ comes, and handles what is published then', async () => {
    const proxy = await gatedProxy(new URL(RABBIT_URL));
    const names = topologyFor(prefix);
    let broker: Broker | undefined;
    try {
      broker = createRabbitBroker({
        url: proxy.url,
        topology: names,
        connectionName: prefix,
        startTimeoutMs: 300,
        // The publishing connection tries again a few seconds after its first failure, as amqplib's backoff does
        // a few attempts into an outage.
        reconnect: { initialDelayMs: 3_000, maxDelayMs: 3_000 },
      });
      await broker.start(); // RabbitMQ unreachable: returns after startTimeoutMs
      expect(broker.isConnected()).toBe(false);

      proxy.open(); // RabbitMQ is up now
      const seen: unknown[] = [];
      // The worker subscribes (src/refunds/worker.ts awaits this in the service's start).
      const consumer = await broker.consume(
        names.requests,
        noteAndAck(seen, (d) => d.body),
        { prefetch: 1, maxAttempts: 3 },
      );
      await eventually(() => broker!.isConnected(), 'the publishing connection to come back');
      await broker.publish({ queue: names.requests }, { n: 1 }, { messageId: 'first' });
      await eventually(() => seen.length === 1, 'the message to be handled');
      expect(seen).toEqual([{ n: 1 }]);
      await consumer.cancel();
    } finally {
      await broker?.close();
      await proxy.close();
    }
  });

  it('a queue of ours deleted before consume() is declared again and subscribed to', async () => {
    const names = topologyFor(`${prefix}.deleted`);
    const broker = createRabbitBroker({
      url: RABBIT_URL,
      topology: names,
      connectionName: `${prefix}.deleted`,
    });
    try {
      await broker.start();
      // The consuming connection is up (a first consumer, on the responses queue), then the requests queue goes.
      const first = await broker.consume(names.responses, () => Promise.resolve({ kind: 'ack' } as const), {
        prefetch: 1,
        maxAttempts: 3,
      });
      const admin = await openAdmin();
      try {
        const ch = await admin.channel();
        await ch.deleteQueue(names.requests);
      } finally {
        await admin.conn.close();
      }
      const seen: unknown[] = [];
      const consumer = await broker.consume(
        names.requests,
        noteAndAck(seen, (d) => d.body),
        { prefetch: 1, maxAttempts: 3 },
      );
      await eventually(() => consumer.isSubscribed(), 'the consumer to subscribe');
      await broker.publish({ queue: names.requests }, { n: 2 }, { messageId: 'after-delete' });
      await eventually(() => seen.length === 1, 'the message to be handled');
      expect(seen).toEqual([{ n: 2 }]);
      await consumer.cancel();
      await first.cancel();
    } finally {
      await broker.close();
    }
  });
});
