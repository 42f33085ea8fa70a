/**
 * A connection lost while close() waits for the consumers' handlers to finish: amqplib's recovery tried it again,
 * over and over (each new connection refused at once by the broker's own setup, which closing refuses), for as long
 * as the drain lasted, up to 20 s. It is not tried again: the stop has begun.
 */
import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { createRabbitBroker, type Delivery } from '../../src/queue/index.js';
import {
  deleteEverything,
  gate,
  probeRabbit,
  RABBIT_URL,
  topologyFor,
  uniquePrefix,
} from './support/rabbit.js';

const prefix = uniquePrefix('rq-close-drain');
const rabbit = await probeRabbit('rabbitmq close during drain');

afterAll(async () => {
  if (rabbit.ok) await deleteEverything(prefix);
});

/** Forwards to RabbitMQ, counting the connections made through it; `cut(n)` ends the n-th (from 0). */
async function countingProxy() {
  const target = new URL(RABBIT_URL);
  const pairs: Socket[][] = [];
  const server = createServer((client) => {
    const upstream = tcpConnect(Number(target.port || 5672), target.hostname);
    pairs.push([client, upstream]);
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(RABBIT_URL);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as AddressInfo).port);
  return {
    url: url.toString(),
    accepted: () => pairs.length,
    cut: (n: number) => pairs[n]?.forEach((s) => s.destroy()),
    close: () =>
      new Promise<void>((resolve) => {
        pairs.flat().forEach((s) => s.destroy());
        server.close(() => resolve());
      }),
  };
}

describe.skipIf(!rabbit.ok)('rabbitmq driver: a connection lost while close() drains the consumers', () => {
  it('is not tried again', async () => {
    const proxy = await countingProxy();
    const names = topologyFor(prefix);
    const broker = createRabbitBroker({
      url: proxy.url,
      topology: names,
      connectionName: prefix,
      // Were recovery left running, it would try again at once, and again.
      reconnect: { initialDelayMs: 20, maxDelayMs: 20 },
    });
    const held = gate();
    const started = gate();
    try {
      await broker.start();
      expect(proxy.accepted()).toBe(1); // the publishing connection
      await broker.consume(
        names.requests,
        async (_d: Delivery) => {
          started.open();
          await held.promise;
          return { kind: 'ack' };
        },
        { prefetch: 1, maxAttempts: 3 },
      );
      expect(proxy.accepted()).toBe(2); // and the consuming one
      await broker.publish({ queue: names.requests }, { n: 1 }, { messageId: `${prefix}-1` });
      await started.promise;

      // close() waits for the handler; meanwhile the publishing connection is lost.
      const closing = broker.close();
      proxy.cut(0);
      // Long enough for a good many retries, 20 ms apart, had recovery gone on.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      held.open();
      await closing;
      expect(proxy.accepted()).toBe(2);
    } finally {
      held.open();
      await broker.close();
      await proxy.close();
    }
  }, 30_000);
});
