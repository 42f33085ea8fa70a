/**
 * A long RabbitMQ outage: every connection attempt fails, and recovery tries again and again. Each attempt's socket
 * is given the broker's abort signal (so that close() can end an attempt under way), and Node 20 never takes the
 * listener it adds off that signal, nor lets go of the socket it holds: one more per retry, for as long as the outage
 * lasted, and Node's MaxListenersExceededWarning on stderr after ten. The broker now takes them off between attempts.
 */
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createRabbitBroker, type Broker } from '../../src/queue/index.js';
import { eventually } from '../helpers/service.js';

let server: Server | undefined;
let broker: Broker | undefined;

afterEach(async () => {
  await broker?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  broker = undefined;
  server = undefined;
});

describe('rabbitmq driver: a long outage', () => {
  it('gathers no listener per failed attempt (no MaxListenersExceededWarning)', async () => {
    // A RabbitMQ whose port takes the connection and drops it at once: every attempt fails.
    let accepted = 0;
    server = createServer((socket) => {
      accepted += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const warnings: Error[] = [];
    const onWarning = (w: Error) => {
      if (w.name === 'MaxListenersExceededWarning') warnings.push(w);
    };
    process.on('warning', onWarning);
    try {
      broker = createRabbitBroker({
        url: `amqp://guest:guest@127.0.0.1:${(server.address() as AddressInfo).port}`,
        topology: { requests: 'outage.requests', responses: 'outage.responses', events: 'outage.events' },
        startTimeoutMs: 100,
        reconnect: { initialDelayMs: 5, maxDelayMs: 10 },
      });
      await broker.start();
      expect(
        await eventually(
          () => Promise.resolve(accepted),
          (n) => n >= 40,
          15_000,
        ),
      ).toBeGreaterThanOrEqual(40);
      // Warnings are emitted on the next tick.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(warnings.map((w) => w.message)).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
