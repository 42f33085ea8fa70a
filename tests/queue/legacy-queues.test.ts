/**
 * The Python service's queues, as RabbitMQ may still hold them when this service takes over, and its outcome
 * consumers as they may be written: a `stripe_refund_requests` left non-durable (pika's `queue_declare` default)
 * is used as it is, and a consumer of `stripe_refund_responses` that declares the queue passively reads the
 * outcomes, while one that declares it as a plain durable queue is refused by RabbitMQ (what the README's
 * "Moving from the Python service" tells such consumers).
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DELIVERY_LIMIT, createRabbitBroker } from '../../src/queue/index.js';
import {
  RABBIT_URL,
  eventually,
  listQueues,
  openAdmin,
  probeRabbit,
  topologyFor,
  uniquePrefix,
  brokersOfFile,
} from './support/rabbit.js';

const filePrefix = uniquePrefix('legacy');
const rabbit = await probeRabbit('queues of the original service', true);

const brokers = brokersOfFile(filePrefix, rabbit);

function startBroker(logs: { level: number; msg?: string; queue?: string }[] = []) {
  const prefix = brokers.prefix();
  const names = topologyFor(prefix);
  const logger = pino({ level: 'error' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const broker = createRabbitBroker({ url: RABBIT_URL, topology: names, connectionName: prefix, logger });
  brokers.keep(broker);
  return { broker, names, prefix };
}

describe.skipIf(!rabbit.ok)('queues of the original service', () => {
  it('uses a non-durable requests queue an old deployment left as it is, saying so, and refunds through it', async () => {
    const logs: { level: number; msg?: string; queue?: string }[] = [];
    const { broker, names, prefix } = startBroker(logs);
    const admin = await openAdmin();
    try {
      // pika's channel.queue_declare(queue='stripe_refund_requests'): a classic queue, not durable.
      await (await admin.channel()).assertQueue(names.requests, { durable: false });
    } finally {
      await admin.conn.close();
    }
    await broker.start();
    expect(broker.isConnected()).toBe(true);
    expect(
      logs.some(
        (l) => l.level === 50 && l.queue === names.requests && l.msg?.includes('different arguments'),
      ),
    ).toBe(true);
    const queue = (await listQueues(prefix)).find((q) => q.name === names.requests);
    expect(queue).toMatchObject({ type: 'classic', durable: false });

    const seen: string[] = [];
    await broker.consume(
      names.requests,
      async (d) => {
        seen.push(d.messageId);
        return { kind: 'ack' };
      },
      { prefetch: 1, maxAttempts: 1 },
    );
    await broker.publish({ queue: names.requests }, { request_key: 'r-1' }, { messageId: 'r-1#accepted' });
    await eventually(() => seen.includes('r-1#accepted'), 'delivery from the non-durable queue');
  });

  it('dead-letters a message that fails every delivery from a classic requests queue, which counts no deliveries', async () => {
    const { broker, names, prefix } = startBroker();
    const admin = await openAdmin();
    try {
      // The old service's queue, as pika declares it: RabbitMQ keeps no x-delivery-count on a classic queue, and no
      // delivery limit stops a message that crashes its consumer every time.
      await (await admin.channel()).assertQueue(names.requests, { durable: false });
    } finally {
      await admin.conn.close();
    }
    await broker.start();
    const deliveries: (number | undefined)[] = [];
    const fine: string[] = [];
    await broker.consume(
      names.requests,
      async (d) => {
        if ((d.body as { poison?: boolean }).poison) {
          deliveries.push(d.deliveryCount);
          throw new Error('fails every time');
        }
        fine.push(d.messageId);
        return { kind: 'ack' };
      },
      { prefetch: 2, maxAttempts: 3 },
    );
    await broker.publish({ queue: names.requests }, { poison: true }, { messageId: 'poison-1' });
    await broker.publish({ queue: names.requests }, { request_key: 'r-2' }, { messageId: 'r-2#accepted' });

    const admin2 = await openAdmin();
    try {
      const ch = await admin2.channel();
      await eventually(
        async () => (await ch.checkQueue(names.deadLetter)).messageCount === 1,
        'the poison message in the dead-letter queue',
      );
      const dead = await ch.get(names.deadLetter, { noAck: true });
      expect(dead && dead.properties.messageId).toBe('poison-1');
      expect(dead && dead.properties.headers?.['x-dead-letter-reason']).toBe('delivery_limit');
    } finally {
      await admin2.conn.close();
    }
    // As on a quorum queue: the first delivery and DEFAULT_DELIVERY_LIMIT redeliveries, each told its failures so far.
    expect(deliveries).toEqual([
      undefined,
      ...Array.from({ length: DEFAULT_DELIVERY_LIMIT }, (_, i) => i + 1),
    ]);
    expect(fine).toEqual(['r-2#accepted']);
    expect((await listQueues(prefix)).find((q) => q.name === names.requests)).toMatchObject({
      type: 'classic',
    });
  });

  it('an outcome consumer that declares the responses queue passively reads it; a plain durable declare is refused', async () => {
    const { broker, names } = startBroker();
    await broker.start();
    await broker.publish(
      { queue: names.responses },
      { success: true, request_id: 'unique-id-123', refund_id: 're_1', status: 'succeeded', amount: 5000 },
      { messageId: 'unique-id-123#succeeded#t' },
    );

    const admin = await openAdmin();
    try {
      // pika's channel.queue_declare(queue='stripe_refund_responses', durable=True), as a consumer written for the
      // Python service may do before consuming: RabbitMQ refuses it and closes the channel.
      const plain = await admin.channel();
      await expect(plain.assertQueue(names.responses, { durable: true })).rejects.toThrow(
        /PRECONDITION.FAILED - inequivalent arg/,
      );
      // queue_declare(..., passive=True): the queue as this service declared it, with the outcome in it.
      const ch = await admin.channel();
      expect(await ch.checkQueue(names.responses)).toMatchObject({ messageCount: 1 });
      const got = await ch.get(names.responses, { noAck: true });
      expect(got && JSON.parse(got.content.toString())).toMatchObject({
        success: true,
        request_id: 'unique-id-123',
        refund_id: 're_1',
        status: 'succeeded',
        amount: 5000,
      });
      await ch.close();
    } finally {
      await admin.conn.close();
    }
  });
});
