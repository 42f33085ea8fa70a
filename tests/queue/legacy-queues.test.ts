/**
 * The Python service's queues, as RabbitMQ may still hold them when this service takes over, and its outcome
 * consumers as they may be written: a `stripe_refund_requests` left non-durable (pika's `queue_declare` default)
 * is used as it is, and a consumer of `stripe_refund_responses` that declares the queue passively reads the
 * outcomes, while one that declares it as a plain durable queue is refused by RabbitMQ (what the README's
 * "Moving from the Python service" tells such consumers).
 */
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createRabbitBroker, type Broker } from '../../src/queue/index.js';
import {
  RABBIT_URL,
  deleteEverything,
  eventually,
  listQueues,
  openAdmin,
  probeRabbit,
  topologyFor,
  uniquePrefix,
} from './support/rabbit.js';

const filePrefix = uniquePrefix('legacy');
const rabbit = await probeRabbit('queues of the original service', true);

let counter = 0;
const opened: Broker[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((broker) => broker.close()));
});

afterAll(async () => {
  if (rabbit.ok) await deleteEverything(filePrefix);
});

function startBroker(logs: { level: number; msg?: string; queue?: string }[] = []) {
  const prefix = `${filePrefix}.${++counter}`;
  const names = topologyFor(prefix);
  const logger = pino({ level: 'error' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const broker = createRabbitBroker({ url: RABBIT_URL, topology: names, connectionName: prefix, logger });
  opened.push(broker);
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
