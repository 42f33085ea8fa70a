/**
 * Messages another producer puts on a queue of ours with whatever properties its client library sets (the Python
 * service's clients publish with pika's defaults): no message_id, no headers, content_type text/plain, not
 * persistent, a priority. The driver names such a message itself, so that its retry and dead-letter copies carry an
 * id: one a consumer of the dead-letter queue can tell copies apart by, and not one shared by every id-less copy
 * (the publisher holds each copy with the same id, exchange and routing key until the one before is confirmed).
 */
import { describe, expect, it } from 'vitest';
import { createRabbitBroker, type Delivery } from '../../src/queue/index.js';
import {
  RABBIT_URL,
  eventually,
  openAdmin,
  probeRabbit,
  topologyFor,
  uniquePrefix,
  brokersOfFile,
} from './support/rabbit.js';

const filePrefix = uniquePrefix('foreign');
const rabbit = await probeRabbit('messages of other producers');

const brokers = brokersOfFile(filePrefix, rabbit);

function makeBroker() {
  const prefix = brokers.prefix();
  const names = topologyFor(prefix);
  const broker = createRabbitBroker({
    url: RABBIT_URL,
    topology: names,
    deliveryLimit: 3,
    retryDelaysMs: [200, 400],
    connectionName: prefix,
  });
  brokers.keep(broker);
  return { broker, names };
}

/** Publishes as pika's `basic_publish(exchange='', routing_key=queue, body=...)` would: no properties at all. */
async function publishBare(queue: string, bodies: string[], props: Record<string, unknown> = {}) {
  const admin = await openAdmin();
  try {
    const ch = await admin.conn.createConfirmChannel();
    for (const body of bodies) ch.sendToQueue(queue, Buffer.from(body), props);
    await ch.waitForConfirms();
    await ch.close();
  } finally {
    await admin.conn.close();
  }
}

describe.skipIf(!rabbit.ok)('messages of other producers, without a message id', () => {
  it('are named by the driver, and their retry and dead-letter copies carry that name', async () => {
    const { broker, names } = makeBroker();
    await broker.start();
    const seen: Delivery[] = [];
    await broker.consume(
      names.requests,
      async (d) => {
        seen.push(d);
        return { kind: 'retry', reason: 'stripe_api_error' };
      },
      { prefetch: 4, maxAttempts: 2 },
    );
    await publishBare(names.requests, ['{"request_key":"a"}']);
    await publishBare(names.requests, ['{"request_key":"b"}'], {
      contentType: 'text/plain',
      priority: 5,
      deliveryMode: 1,
    });

    await eventually(() => seen.length === 4, 'two deliveries of each message');
    const idsOf = (key: string) =>
      seen.filter((d) => (d.body as { request_key: string }).request_key === key).map((d) => d.messageId);
    const [a, b] = [idsOf('a'), idsOf('b')];
    // Each message has a name of its own from its first delivery, kept by its retry copy.
    expect(a).toHaveLength(2);
    expect(b).toHaveLength(2);
    expect(a[0]).not.toBe('');
    expect(b[0]).not.toBe('');
    expect(a[1]).toBe(a[0]);
    expect(b[1]).toBe(b[0]);
    expect(a[0]).not.toBe(b[0]);

    // Retries exhausted: the dead-letter copies carry the same names.
    const admin = await openAdmin();
    try {
      const ch = await admin.channel();
      const dead = await eventually(async () => {
        const { messageCount } = await ch.checkQueue(names.deadLetter);
        return messageCount === 2;
      }, 'both dead-letter copies');
      expect(dead).toBe(true);
      const ids: string[] = [];
      for (let i = 0; i < 2; i++) {
        const msg = await ch.get(names.deadLetter, { noAck: true });
        if (msg) ids.push(String(msg.properties.messageId ?? ''));
      }
      expect(ids.sort()).toEqual([a[0], b[0]].sort());
    } finally {
      await admin.conn.close();
    }
  });

  it('one whose expiration runs out before a worker takes it is dead-lettered, with reason expired', async () => {
    const { broker, names } = makeBroker();
    await broker.start();
    // No consumer yet: the message waits in the queue past its expiration.
    await publishBare(names.requests, ['{"request_key":"late"}'], { expiration: '1' });
    const admin = await openAdmin();
    try {
      const ch = await admin.channel();
      await eventually(
        async () => (await ch.checkQueue(names.deadLetter)).messageCount === 1,
        'the expired message in the dead-letter queue',
      );
      const dead = await ch.get(names.deadLetter, { noAck: true });
      const deaths = dead && (dead.properties.headers?.['x-death'] as { reason: string; queue: string }[]);
      expect(deaths && deaths[0]).toMatchObject({ reason: 'expired', queue: names.requests });
      expect(dead && JSON.parse(dead.content.toString())).toEqual({ request_key: 'late' });
      expect((await ch.checkQueue(names.requests)).messageCount).toBe(0);
    } finally {
      await admin.conn.close();
    }
  });
});
