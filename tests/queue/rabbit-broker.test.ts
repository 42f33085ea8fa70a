/**
 * What only the RabbitMQ driver can show: the arguments it declares, message properties on the
 * wire, reconnecting after the broker drops the connection, and behaviour when RabbitMQ is away.
 */
import { pino } from 'pino';
import { captureLogger } from '../helpers/log-capture.js';
import { freePort } from '../helpers/processes.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { describe, expect, it } from 'vitest';
import {
  BrokerUnavailableError,
  createRabbitBroker,
  deadLetterReason,
  queueFamily,
  type Delivery,
  type Outcome,
  type RabbitBrokerOptions,
} from '../../src/queue/index.js';
import {
  RABBIT_URL,
  closeConnectionsNamed,
  eventually,
  gate,
  listExchanges,
  listQueues,
  openAdmin,
  probeRabbit,
  topologyFor,
  uniquePrefix,
  brokersOfFile,
} from './support/rabbit.js';

const filePrefix = uniquePrefix('rabbit');
const rabbit = await probeRabbit('rabbitmq driver', true);

const brokers = brokersOfFile(filePrefix, rabbit);

function makeBroker(overrides: Partial<RabbitBrokerOptions> = {}) {
  const prefix = brokers.prefix();
  const names = topologyFor(prefix);
  const broker = createRabbitBroker({
    url: RABBIT_URL,
    topology: names,
    deliveryLimit: 3,
    retryDelaysMs: [300, 900],
    connectionName: prefix,
    reconnect: { initialDelayMs: 100, maxDelayMs: 1_000 },
    ...overrides,
  });
  brokers.keep(broker);
  return { broker, names, prefix };
}

describe('rabbitmq driver when RabbitMQ is unreachable', () => {
  it('refuses options that could only fail later', () => {
    expect(() => createRabbitBroker({ url: 'http://127.0.0.1:15672' })).toThrow(/amqp/);
    expect(() => createRabbitBroker({ url: RABBIT_URL, retryDelaysMs: [] })).toThrow(/retryDelaysMs/);
    expect(() => createRabbitBroker({ url: RABBIT_URL, deliveryLimit: 0 })).toThrow(/deliveryLimit/);
  });

  it('says why a connection attempt failed (the broker refused the login), without the password', async () => {
    const { logger, lines } = captureLogger('info');
    const refused = new URL(RABBIT_URL);
    refused.password = 'not-the-password-4711';
    const { broker } = makeBroker({ url: refused.toString(), startTimeoutMs: 300, logger });
    await broker.start();
    expect(broker.isConnected()).toBe(false);
    const failed = await eventually(
      () => lines.find((l) => l.includes('RabbitMQ connection attempt failed')),
      'a failed connection attempt to be logged',
    );
    expect(failed).toMatch(/ACCESS.REFUSED/);
    expect(lines.join('\n')).not.toContain('not-the-password-4711');
  });

  it('says the broker refused the login, not that it is elsewhere, naming the settings to check', async () => {
    const { logger, lines } = captureLogger('info');
    const refused = new URL(RABBIT_URL);
    refused.password = 'not-the-password-4712';
    const { broker } = makeBroker({ url: refused.toString(), startTimeoutMs: 2_000, logger });
    await broker.start();
    const summary = lines.find((l) => l.includes('refused the login'));
    expect(summary).toContain(
      `RabbitMQ at ${refused.host} refused the login; publishing fails until it accepts it, retrying in the background (check RABBITMQ_USER and RABBITMQ_PASSWORD, or the user and password in RABBITMQ_URL)`,
    );
    expect(lines.find((l) => l.includes('not reachable yet'))).toBeUndefined();
    expect(lines.join('\n')).not.toContain('not-the-password-4712');
  });

  it('says the broker refused the virtual host, naming RABBITMQ_VHOST', async () => {
    const { logger, lines } = captureLogger('info');
    const url = new URL(RABBIT_URL);
    url.pathname = `/${filePrefix}-no-such-vhost`;
    const { broker } = makeBroker({ url: url.toString(), startTimeoutMs: 2_000, logger });
    await broker.start();
    expect(broker.isConnected()).toBe(false);
    expect(lines.find((l) => l.includes('refused to open virtual host'))).toContain(
      `RabbitMQ at ${url.host} refused to open virtual host \\"${filePrefix}-no-such-vhost\\" (it does not exist, or the user may not use it); publishing fails until it opens it, retrying in the background (check RABBITMQ_VHOST, or the path of RABBITMQ_URL)`,
    );
    expect(lines.find((l) => l.includes('not reachable yet'))).toBeUndefined();
  });

  it('names where it looked, and the settings that say where RabbitMQ is, while it cannot reach it', async () => {
    const { logger, lines } = captureLogger('info');
    const dead = await freePort();
    const { broker } = makeBroker({
      url: `amqp://guest:hunter2@127.0.0.1:${dead}`,
      startTimeoutMs: 300,
      logger,
    });
    await broker.start();
    expect(lines.find((l) => l.includes('not reachable yet'))).toContain(
      `RabbitMQ is not reachable yet at 127.0.0.1:${dead}; publishing fails until it is, retrying in the background (if it is elsewhere, set RABBITMQ_URL, or RABBITMQ_HOST and RABBITMQ_PORT)`,
    );
    expect(lines.join('\n')).not.toContain('hunter2');
    await broker.close();
  });

  it('start() returns after a short wait, publish rejects at once, close() still works', async () => {
    const { broker, names } = makeBroker({ url: 'amqp://guest:guest@127.0.0.1:1', startTimeoutMs: 300 });
    await broker.start();
    expect(broker.isConnected()).toBe(false);
    await expect(
      broker.publish({ queue: names.requests }, { a: 1 }, { messageId: 'down-1' }),
    ).rejects.toBeInstanceOf(BrokerUnavailableError);
    expect(await broker.queueDepth(names.requests)).toBeNull();
    // Registering a consumer while down is allowed: it attaches once a connection exists.
    const consumer = await broker.consume(names.requests, async () => ({ kind: 'ack' }), {
      prefetch: 1,
      maxAttempts: 1,
    });
    await consumer.cancel();
    await broker.close();
  });
});

describe.skipIf(!rabbit.ok)('rabbitmq driver', () => {
  it('declares durable quorum queues with a delivery limit, at-least-once dead-lettering and delay levels', async () => {
    const { broker, names, prefix } = makeBroker();
    await broker.start();
    expect(broker.isConnected()).toBe(true);

    const queues = new Map((await listQueues(prefix)).map((q) => [q.name, q]));
    const requests = queues.get(names.requests);
    expect(requests).toMatchObject({ type: 'quorum', durable: true });
    expect(requests?.arguments).toMatchObject({
      'x-queue-type': 'quorum',
      'x-delivery-limit': 3,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': names.deadLetter,
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    });
    expect(queues.get(names.deadLetter)).toMatchObject({ type: 'quorum', durable: true });
    expect(queues.get(names.responses)).toMatchObject({ type: 'quorum', durable: true });

    const levels = queueFamily(names.requests, names, [300, 900]).levels;
    expect(levels.map((l) => l.queue)).toEqual([`${names.retryPrefix}.300ms`, `${names.retryPrefix}.900ms`]);
    for (const level of levels) {
      const queue = queues.get(level.queue);
      expect(queue).toMatchObject({ type: 'quorum', durable: true });
      expect(queue?.arguments).toMatchObject({
        // The queue TTL is the ceiling of the per-message jitter (10 %).
        'x-message-ttl': level.delayMs + Math.ceil(level.delayMs / 10),
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': names.requests,
        'x-dead-letter-strategy': 'at-least-once',
      });
    }

    const exchanges = await listExchanges(prefix);
    expect(exchanges).toEqual([{ name: names.events, type: 'topic', durable: true }]);
  });

  it('publishes persistent JSON with a content type, message id and timestamp', async () => {
    const { broker, names } = makeBroker();
    await broker.start();
    await broker.publish(
      { queue: names.requests },
      { amount: 500, currency: 'jpy' },
      { messageId: 'props-1' },
    );

    const admin = await openAdmin();
    try {
      const ch = await admin.channel();
      const msg = await ch.get(names.requests, { noAck: true });
      expect(msg).not.toBe(false);
      if (msg === false) return;
      expect(msg.properties).toMatchObject({
        deliveryMode: 2,
        contentType: 'application/json',
        messageId: 'props-1',
      });
      expect(typeof msg.properties.timestamp).toBe('number');
      expect(JSON.parse(msg.content.toString('utf8'))).toEqual({ amount: 500, currency: 'jpy' });
    } finally {
      await admin.conn.close();
    }
  });

  it('a retried message really expired out of the delay queue (x-death)', async () => {
    const { broker, names } = makeBroker();
    await broker.start();
    const seen: Delivery[] = [];
    await broker.consume(
      names.requests,
      async (d) => {
        seen.push(d);
        return d.attempt === 0 ? { kind: 'retry', reason: 'later' } : { kind: 'ack' };
      },
      { prefetch: 1, maxAttempts: 3 },
    );
    await broker.publish({ queue: names.requests }, { r: 1 }, { messageId: 'xd-1' });
    const [, retried] = await eventually(() => seen.length === 2 && seen, 'the retried delivery');
    const deaths = retried?.headers['x-death'] as { queue: string; reason: string }[] | undefined;
    expect(deaths?.[0]).toMatchObject({ queue: `${names.retryPrefix}.300ms`, reason: 'expired' });
  });

  it('dead-letters a released copy that a lost connection takes past the delivery limit, without handing it out', async () => {
    // Limit 1: a message that fails once, then crashes its consumer, is dead-lettered by RabbitMQ without a third
    // delivery. Released in between, the copy the driver publishes starts at x-delivery-count 0 to RabbitMQ, which
    // would hand it out again after the crash: the driver stops it instead, at the same point.
    const { broker, names, prefix } = makeBroker({ deliveryLimit: 1 });
    await broker.start();
    const stuck = gate();
    const seen: Delivery[] = [];
    await broker.consume(
      names.requests,
      async (d): Promise<Outcome> => {
        seen.push(d);
        if (seen.length === 1) throw new Error('handler bug');
        if (seen.length === 2) return { kind: 'release' };
        if (seen.length === 3) {
          // Still running when the connection goes: RabbitMQ takes the message back, a failed delivery.
          await stuck.promise;
          return { kind: 'ack' };
        }
        throw new Error('handed out past the delivery limit');
      },
      { prefetch: 1, maxAttempts: 3 },
    );
    const dead: Delivery[] = [];
    await broker.consume(
      names.deadLetter,
      async (d) => {
        dead.push(d);
        return { kind: 'ack' };
      },
      { prefetch: 1, maxAttempts: 3 },
    );

    await broker.publish({ queue: names.requests }, { r: 1 }, { messageId: 'crash-1' });
    await eventually(() => seen.length === 3, 'the delivery of the released copy');
    // The connection consumers are on (the driver's other one only publishes).
    expect(await closeConnectionsNamed(`${prefix}/consume`)).toBe(1);

    const [letter] = await eventually(() => dead.length === 1 && dead, 'the dead letter');
    stuck.open();
    expect(letter?.messageId).toBe('crash-1');
    expect(letter && deadLetterReason(letter)).toBe('delivery_limit');
    expect(seen.map((d) => d.deliveryCount)).toEqual([undefined, 1, 1]);
    expect(await broker.queueDepth(names.requests)).toBe(0);
  });

  // RabbitMQ takes back what a lost connection had delivered and hands it out again. A handler still running then
  // used to route its outcome all the same, over the new connection: a 'retry' left a copy in the delay queue besides
  // the redelivered message, and the refund went through the worker twice (a 'dead-letter', two dead letters).
  it('a handler that ends after its connection was lost leaves its message to the redelivery, without a copy', async () => {
    const { broker, names, prefix } = makeBroker({ retryDelaysMs: [60_000] });
    await broker.start();
    const stuck = gate();
    const seen: Delivery[] = [];
    const consumer = await broker.consume(
      names.requests,
      async (d): Promise<Outcome> => {
        seen.push(d);
        if (seen.length > 1) return { kind: 'ack' };
        await stuck.promise;
        return { kind: 'retry', reason: 'Stripe timed out' };
      },
      { prefetch: 1, maxAttempts: 3 },
    );
    await broker.publish({ queue: names.requests }, { r: 1 }, { messageId: 'lost-1' });
    await eventually(() => seen.length === 1, 'the first delivery');
    expect(await closeConnectionsNamed(`${prefix}/consume`)).toBe(1);
    const [, again] = await eventually(() => seen.length === 2 && seen, 'the redelivery');
    expect(again).toMatchObject({ messageId: 'lost-1', redelivered: true, attempt: 0 });

    stuck.open();
    await consumer.cancel(); // waits for the first handler and whatever it does with its outcome
    const [level] = queueFamily(names.requests, names, [60_000]).levels;
    expect(await broker.queueDepth(level?.queue ?? '')).toBe(0);
    expect(await broker.queueDepth(names.requests)).toBe(0);
    expect(seen).toHaveLength(2);
  });

  it('rejects a publish the broker nacks', async () => {
    const { broker, prefix } = makeBroker();
    await broker.start();
    const full = `${prefix}.full`;
    const admin = await openAdmin();
    try {
      const ch = await admin.channel();
      await ch.assertQueue(full, {
        durable: false,
        arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' },
      });
    } finally {
      await admin.conn.close();
    }
    await expect(broker.publish({ queue: full }, { a: 1 }, { messageId: 'nack-1' })).rejects.toMatchObject({
      code: 'nacked',
    });
  });

  it('recovers from a channel error: a publish to a missing exchange fails, the next one works', async () => {
    const { broker, names, prefix } = makeBroker();
    await broker.start();
    await expect(
      broker.publish({ exchange: `${prefix}.no-such-exchange`, routingKey: 'x' }, {}, { messageId: 'ch-1' }),
    ).rejects.toMatchObject({ code: 'channel-closed' });
    await broker.publish({ queue: names.requests }, { ok: true }, { messageId: 'ch-2' });
    expect(await broker.queueDepth(names.requests)).toBe(1);
    expect(broker.isConnected()).toBe(true);
  });

  it('re-subscribes when the server cancels the consumer (queue deleted, then declared again)', async () => {
    const logs: { msg?: string }[] = [];
    const logger = pino(
      { level: 'warn' },
      { write: (line: string) => logs.push(JSON.parse(line) as { msg?: string }) },
    );
    const { broker, names, prefix } = makeBroker({ logger });
    await broker.start();
    const queue = `${prefix}.sub.cancelled`;
    await broker.bind(queue, names.events, 'charge.*');
    const seen: string[] = [];
    await broker.consume(
      queue,
      async (d) => {
        seen.push(d.messageId);
        return { kind: 'ack' };
      },
      { prefetch: 1, maxAttempts: 1 },
    );
    const admin = await openAdmin();
    try {
      const ch = await admin.channel();
      await ch.deleteQueue(queue);
    } finally {
      await admin.conn.close();
    }
    // Quorum queues notify consumers of a deletion asynchronously; re-creating the queue before
    // that notice arrives races inside RabbitMQ itself, so wait for the driver to see it first.
    await eventually(() => logs.some((l) => l.msg?.includes('cancelled the consumer')), 'the cancel notice');
    await broker.bind(queue, names.events, 'charge.*');
    await broker.publish(
      { exchange: names.events, routingKey: 'charge.updated' },
      {},
      { messageId: 'again-1' },
    );
    await eventually(() => seen.includes('again-1'), 'a delivery after re-subscribing');
  });

  it('keeps working when a queue already exists with other arguments', async () => {
    const prefix = brokers.prefix();
    const names = topologyFor(prefix);
    const admin = await openAdmin();
    try {
      // What an older deployment might have left behind: a classic queue under the same name.
      const ch = await admin.channel();
      await ch.assertQueue(names.requests, { durable: true });
    } finally {
      await admin.conn.close();
    }
    const logs: { level: number; msg?: string; queue?: string }[] = [];
    const logger = pino(
      { level: 'error' },
      { write: (line: string) => logs.push(JSON.parse(line) as (typeof logs)[0]) },
    );
    const broker = createRabbitBroker({ url: RABBIT_URL, topology: names, connectionName: prefix, logger });
    brokers.keep(broker);
    await broker.start();
    expect(broker.isConnected()).toBe(true);
    // ...and says loudly that the queue is not what the configuration asks for.
    expect(
      logs.some(
        (l) => l.level === 50 && l.queue === names.requests && l.msg?.includes('different arguments'),
      ),
    ).toBe(true);
    const seen: string[] = [];
    await broker.consume(
      names.requests,
      async (d) => {
        seen.push(d.messageId);
        return { kind: 'ack' };
      },
      { prefetch: 1, maxAttempts: 1 },
    );
    await broker.publish({ queue: names.requests }, {}, { messageId: 'legacy-1' });
    await eventually(() => seen.includes('legacy-1'), 'delivery from the legacy queue');
  });

  // The connection opened, but a queue of ours could not be declared: the start used to say RabbitMQ was not
  // reachable and to check where it is, and each retry that the connection attempt had failed.
  it('says a queue of ours is held exclusive by another connection, not that RabbitMQ is unreachable; goes on once it is free', async () => {
    const { logger, lines } = captureLogger('info');
    const { broker, names } = makeBroker({ logger, startTimeoutMs: 1_000 });
    const admin = await openAdmin();
    let released = false;
    try {
      const ch = await admin.channel();
      await ch.assertQueue(names.requests, { exclusive: true });
      await broker.start();
      expect(broker.isConnected()).toBe(false);
      const said = lines.map((l) => JSON.parse(l) as { msg: string; reason?: string });
      const summary = said.find((l) => l.msg.includes(new URL(RABBIT_URL).host));
      expect(summary?.msg).toContain('refused to declare');
      expect(summary?.msg).toContain('RESOURCE_LOCKED');
      expect(summary?.msg).toContain(names.requests);
      expect(summary?.msg).not.toContain('not reachable');
      expect(said.some((l) => l.msg === 'RabbitMQ connection attempt failed')).toBe(false);
      await admin.conn.close();
      released = true;
      await eventually(() => broker.isConnected(), 'the start once the exclusive queue is gone');
      await broker.publish({ queue: names.requests }, {}, { messageId: 'free-1' });
      expect(await broker.queueDepth(names.requests)).toBe(1);
    } finally {
      if (!released) await admin.conn.close();
    }
  });

  it('reconnects after the broker closes the connection: rejects publishes meanwhile, re-declares, keeps consuming', async () => {
    const { broker, names, prefix } = makeBroker();
    const states: boolean[] = [];
    let publishDuringOutage: Promise<void> | undefined;
    broker.onStateChange((connected) => {
      states.push(connected);
      if (!connected && !publishDuringOutage) {
        publishDuringOutage = broker.publish(
          { queue: names.requests },
          { during: 'outage' },
          { messageId: 'out-1' },
        );
        publishDuringOutage.catch(() => {});
      }
    });
    await broker.start();
    const seen: string[] = [];
    await broker.consume(
      names.requests,
      async (d) => {
        seen.push(d.messageId);
        return { kind: 'ack' };
      },
      { prefetch: 2, maxAttempts: 3 },
    );
    await broker.publish({ queue: names.requests }, {}, { messageId: 'before-1' });
    await eventually(() => seen.includes('before-1'), 'the first delivery');

    // Remove part of the topology behind the broker's back: the reconnect must bring it back.
    const admin = await openAdmin();
    try {
      const ch = await admin.channel();
      await ch.deleteQueue(names.deadLetter);
      await ch.deleteExchange(names.events);
    } finally {
      await admin.conn.close();
    }

    // Both: the one it publishes on, and the one it consumes on.
    expect(await closeConnectionsNamed(prefix)).toBe(1);
    expect(await closeConnectionsNamed(`${prefix}/consume`)).toBe(1);

    await eventually(() => states.includes(false), 'the broker to notice the outage');
    await expect(publishDuringOutage).rejects.toBeInstanceOf(BrokerUnavailableError);
    await eventually(() => broker.isConnected(), 'the reconnect');
    expect(states).toEqual([true, false, true]);

    const after = await listQueues(prefix);
    expect(after.map((q) => q.name)).toContain(names.deadLetter);
    expect((await listExchanges(prefix)).map((e) => e.name)).toEqual([names.events]);

    await broker.publish({ queue: names.requests }, {}, { messageId: 'after-1' });
    await eventually(() => seen.includes('after-1'), 'a delivery on the re-established consumer');
    expect(seen).not.toContain('out-1');
  });

  // A connection that broke (its socket closed under it) logged its error twice: by the model's own listener and
  // again when amqplib's recovering connection emitted it a second time.
  it('logs a connection that breaks once as an error, and once as lost', async () => {
    const { logger, lines } = captureLogger('info');
    const target = new URL(RABBIT_URL);
    const address = { host: target.hostname, port: Number(target.port || 5672) };
    let proxy = await startTcpProxy(address);
    const viaProxy = new URL(RABBIT_URL);
    viaProxy.hostname = proxy.host;
    viaProxy.port = String(proxy.port);
    const { broker } = makeBroker({ url: viaProxy.toString(), logger });
    const states: boolean[] = [];
    broker.onStateChange((connected) => states.push(connected));
    try {
      await broker.start();
      await proxy.close();
      await eventually(() => states.join() === 'true,false', 'the outage');
      proxy = await startTcpProxy(address, proxy.port);
      await eventually(() => states.join() === 'true,false,true', 'the reconnect');
    } finally {
      await broker.close();
      await proxy.close();
    }
    const about = (msg: string) => lines.filter((l) => (JSON.parse(l) as { msg: string }).msg === msg);
    expect(about('RabbitMQ connection error')).toHaveLength(1);
    expect(about('RabbitMQ connection lost; reconnecting in the background')).toHaveLength(1);
  });
});
