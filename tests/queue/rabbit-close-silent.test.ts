/**
 * close() while a connection attempt is under way to a RabbitMQ that takes the TCP connection and never answers (a
 * broker that hangs, a load balancer whose backend is gone). The attempt waits for RabbitMQ's first frame; amqplib
 * gives up on it only after its own timeout (10 s), so the socket outlived close() that long, and kept the process
 * of a stop up with it. close() ends every attempt under way, of both connections, and none is made afterwards.
 * Nor does close() wait for RabbitMQ's answers on connections that are up and then go silent.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createRabbitBroker, type Broker } from '../../src/queue/index.js';
import { eventually } from '../helpers/service.js';
import { silentServer, type SilentServer } from '../helpers/silent-server.js';
import { proxyFor } from '../helpers/tcp-proxy.js';
import { deleteEverything, probeRabbit, RABBIT_URL, topologyFor, uniquePrefix } from './support/rabbit.js';

const names = {
  requests: 'close-silent.requests',
  responses: 'close-silent.responses',
  events: 'close-silent.events',
};

let server: SilentServer | undefined;
let broker: Broker | undefined;

afterEach(async () => {
  await broker?.close();
  await server?.close();
  broker = undefined;
  server = undefined;
});

const until = (cond: () => boolean, timeoutMs: number) =>
  eventually(() => Promise.resolve(cond()), Boolean, timeoutMs);

describe('rabbitmq driver: close() while RabbitMQ takes the connection and never answers', () => {
  it('closes both connection attempts promptly, and attempts none after', async () => {
    server = await silentServer();
    broker = createRabbitBroker({
      url: `amqp://guest:guest@127.0.0.1:${server.port}`,
      topology: names,
      // start() and the first consume() would wait this long for RabbitMQ: close() comes while they wait.
      startTimeoutMs: 60_000,
      // Were recovery left running, its next attempt would come at once.
      reconnect: { initialDelayMs: 20, maxDelayMs: 20 },
    });
    const starting = broker.start();
    expect(await until(() => server!.accepted() === 1, 5_000)).toBe(true);
    const consuming = broker.consume('close-silent.requests', () => Promise.resolve({ kind: 'ack' }), {
      prefetch: 1,
      maxAttempts: 3,
    });
    consuming.catch(() => undefined);
    // The publishing connection's attempt and the consuming one's, both waiting for RabbitMQ's first frame.
    expect(await until(() => server!.accepted() === 2, 5_000)).toBe(true);
    expect(server.sockets.size).toBe(2);

    await broker.close();
    await starting;
    await expect(consuming).rejects.toThrow(/closed/);
    // Well before amqplib's own 10 s timeout on an opening handshake.
    expect(await until(() => server!.sockets.size === 0, 3_000)).toBe(true);

    // No attempt after close(): recovery is stopped, not just the attempt under way.
    const seen = server.accepted();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(server.accepted()).toBe(seen);
  }, 30_000);
});

const prefix = uniquePrefix('rq-close-silent');
const rabbit = await probeRabbit('rabbitmq close while RabbitMQ is silent');

afterAll(async () => {
  if (rabbit.ok) await deleteEverything(prefix);
});

describe.skipIf(!rabbit.ok)('rabbitmq driver: close() while RabbitMQ, connected, goes silent', () => {
  it('does not wait for answers that do not come: close() ends, the connections are dropped', async () => {
    const { proxy, url } = await proxyFor(RABBIT_URL);
    const topology = topologyFor(prefix);
    const silenced = createRabbitBroker({ url, topology, connectionName: prefix });
    try {
      await silenced.start();
      await silenced.consume(topology.requests, () => Promise.resolve({ kind: 'ack' }), {
        prefetch: 1,
        maxAttempts: 3,
      });
      expect(silenced.connections?.()).toEqual({ publish: true, consume: true });
      // Both connections up, then nothing more gets through either way (a broker that hangs, a path that drops).
      proxy.blackHole();
      // basic.cancel, the channels' and the connections' close each wait for RabbitMQ's answer: amqplib gives up on
      // a silent connection only when its heartbeat runs out (a minute or more), past the 25 s a stop has.
      const closed = await Promise.race([
        silenced.close().then(() => 'closed'),
        new Promise((resolve) => setTimeout(() => resolve('still waiting'), 15_000)),
      ]);
      expect(closed).toBe('closed');
      expect(silenced.connections?.()).toEqual({ publish: false, consume: false });
    } finally {
      // The proxy's sockets first: a close() still waiting for RabbitMQ ends with them.
      await proxy.close();
      await silenced.close();
    }
  }, 60_000);
});
