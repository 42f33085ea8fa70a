/**
 * close() while a connection attempt is under way to a RabbitMQ that takes the TCP connection and never answers (a
 * broker that hangs, a load balancer whose backend is gone). The attempt waits for RabbitMQ's first frame; amqplib
 * gives up on it only after its own timeout (10 s), so the socket outlived close() that long, and kept the process
 * of a stop up with it. close() ends every attempt under way, of both connections, and none is made afterwards.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRabbitBroker, type Broker } from '../../src/queue/index.js';
import { eventually } from '../helpers/service.js';
import { silentServer, type SilentServer } from '../helpers/silent-server.js';

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
