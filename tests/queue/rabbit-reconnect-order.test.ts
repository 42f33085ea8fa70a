/**
 * A RabbitMQ restart that loses the queues (a broker without its data volume), and the process's two connections
 * coming back in either order. The consumer subscribes again either way: the consuming connection, back first,
 * declares the topology itself (before, its attach found no queue, 404, and retried until the publishing connection
 * was back to declare it); back second, it finds what the publishing connection declared. The names are those
 * QUEUE_PREFIX gives (prefixedTopology).
 *
 * A TCP proxy in front of the real RabbitMQ drops both connections (the restart) and lets each back on its own: it
 * tells them apart by the connection_name the client sends in its handshake (the consuming one's ends in `/consume`).
 */
import { describe, expect, it } from 'vitest';
import { createRabbitBroker, prefixedTopology, type Broker } from '../../src/queue/index.js';
import { resolveTopology } from '../../src/queue/topology.js';
import { deleteEverything, eventually, RABBIT_URL } from './support/rabbit.js';
import { frontProxy, noteAndAck, rabbitFile } from './support/rigs.js';

// rabbitmqctl lists the queues the restart deletes.
const rabbit = await rabbitFile('reconnect-order', 'reconnect order', true);
const prefix = rabbit.prefix;

type Which = 'publish' | 'consume';

/** Refuses the connections of the kinds held (closed once their handshake names them); drop() ends every one. */
async function sortingProxy(target: URL, connectionName: string) {
  const held = new Set<Which>();
  const proxy = await frontProxy(target, (client, open) => {
    const upstream = open();
    let seen = Buffer.alloc(0);
    const sort = (chunk: Buffer): void => {
      seen = Buffer.concat([seen, chunk]);
      const text = seen.toString('latin1');
      const at = text.indexOf(connectionName);
      // Not named yet (the protocol header, which RabbitMQ answers before the client names itself), or the name's
      // end not read yet (the consuming one's name continues with `/consume`): passed on.
      if (at < 0 || text.length < at + connectionName.length + '/consume'.length) {
        upstream.write(chunk);
        return;
      }
      const which: Which = text.startsWith('/consume', at + connectionName.length) ? 'consume' : 'publish';
      client.off('data', sort);
      if (held.has(which)) {
        client.destroy();
        return;
      }
      upstream.write(chunk);
      client.pipe(upstream);
    };
    client.on('data', sort);
  });
  return {
    url: proxy.url,
    hold: (...which: Which[]) => which.forEach((w) => held.add(w)),
    release: (which: Which) => held.delete(which),
    drop: proxy.drop,
    close: proxy.close,
  };
}

describe.skipIf(!rabbit.ok)(
  'rabbitmq driver: both connections back, in either order, after a restart',
  () => {
    it('subscribes again whichever connection is back first, on the QUEUE_PREFIX names', async () => {
      const proxy = await sortingProxy(new URL(RABBIT_URL), prefix);
      const names = resolveTopology(prefixedTopology(prefix));
      let broker: Broker | undefined;
      try {
        broker = createRabbitBroker({
          url: proxy.url,
          topology: names,
          connectionName: prefix,
          reconnect: { initialDelayMs: 100, maxDelayMs: 200 },
        });
        await broker.start();
        const seen: unknown[] = [];
        const consumer = await broker.consume(
          names.requests,
          noteAndAck(seen, (d) => d.body),
          { prefetch: 1, maxAttempts: 3 },
        );
        expect(consumer.isSubscribed()).toBe(true);
        const b = broker;
        const restart = async () => {
          proxy.hold('publish', 'consume');
          proxy.drop();
          await eventually(
            () => !b.isConnected() && b.connections?.().consume === false,
            'both connections to be lost',
          );
          await deleteEverything(prefix); // the restarted RabbitMQ has lost the queues
        };

        // The consuming connection back first: it subscribes while the publishing one is still away.
        await restart();
        proxy.release('consume');
        await eventually(() => consumer.isSubscribed(), 'the consumer to subscribe again');
        expect(broker.isConnected()).toBe(false);
        proxy.release('publish');
        await eventually(() => b.isConnected(), 'the publishing connection to be back');
        await broker.publish({ queue: names.requests }, { n: 1 }, { messageId: 'consume-first' });
        await eventually(() => seen.length === 1, 'the first message to be handled');

        // The publishing connection back first: what it publishes waits in the queue for the consumer.
        await restart();
        proxy.release('publish');
        await eventually(() => b.isConnected(), 'the publishing connection to be back');
        expect(consumer.isSubscribed()).toBe(false);
        await broker.publish({ queue: names.requests }, { n: 2 }, { messageId: 'publish-first' });
        proxy.release('consume');
        await eventually(() => seen.length === 2, 'the second message to be handled');
        expect(seen).toEqual([{ n: 1 }, { n: 2 }]);
        expect(consumer.isSubscribed()).toBe(true);
        await consumer.cancel();
      } finally {
        await broker?.close();
        await proxy.close();
      }
    });
  },
);
