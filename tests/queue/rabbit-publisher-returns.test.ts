/**
 * Which publish a mandatory return belongs to, when copies of one message (same message id, same queue) are in flight
 * together on the confirm channel and the queue is deleted between them: two deliveries of one refund sent to the same
 * delay queue. RabbitMQ sends a message's basic.return before its basic.ack, but the ack may be a `multiple` one that
 * also confirms earlier copies (routed, their confirms batched with it), and amqplib calls their callbacks first,
 * oldest first. A return counted per (message id, exchange, routing key) then went to the oldest copy: a copy a queue
 * took was reported unroutable, and the copy no queue took was reported sent (lost while its caller believes it
 * stored).
 *
 * Real RabbitMQ: the copies carry their number in the body; a consumer on the queue sees which ones it took before it
 * was deleted, and the test listens to what RabbitMQ returns on the publisher's channel. A copy is reported unroutable
 * exactly when RabbitMQ returned it, and never when the consumer received it.
 *
 * The race depends on how RabbitMQ batches confirms, so each round tries again (the queue deleted at another point);
 * on the code before the fix it showed within a few dozen rounds here. It cannot pass wrongly: it only reads outcomes.
 */
import { connect, type ChannelModel, type Message } from 'amqplib';
import { afterAll, describe, expect, it } from 'vitest';
import { PublishError } from '../../src/queue/errors.js';
import { ConfirmPublisher } from '../../src/queue/rabbit-publisher.js';
import { captureLogger } from '../helpers/log-capture.js';
import { deleteEverything, openAdmin, probeRabbit, RABBIT_URL, uniquePrefix } from './support/rabbit.js';

const probe = await probeRabbit('rabbit-publisher-returns');
const prefix = uniquePrefix('pubret');

afterAll(async () => {
  if (probe.ok) await deleteEverything(prefix);
});

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe.skipIf(!probe.ok)('rabbitmq publisher: returns of copies of one message', () => {
  it('reports unroutable only the copies no queue took, when the queue is deleted while copies are in flight', async () => {
    const { logger } = captureLogger('info');
    let model: ChannelModel | undefined;
    const admin = await openAdmin();
    const wrong: string[] = [];
    let returnedTotal = 0;
    let routedTotal = 0;
    /** The copies (their numbers) RabbitMQ returned in the current round. */
    const returned = new Set<number>();
    try {
      model = await connect(RABBIT_URL);
      model.on('error', () => {});
      // The model as the publisher sees it; the test only listens to what RabbitMQ returns on its channel.
      const real = model;
      const observed = Object.create(real) as ChannelModel;
      observed.createConfirmChannel = async () => {
        const channel = await real.createConfirmChannel();
        channel.on('return', (msg: Message) =>
          returned.add((JSON.parse(msg.content.toString()) as { n: number }).n),
        );
        return channel;
      };
      const publisher = await ConfirmPublisher.open(observed, logger);
      for (let round = 0; round < 200 && wrong.length === 0; round++) {
        const queue = `${prefix}.q${round}`;
        const ch = await admin.channel();
        await ch.assertQueue(queue, { durable: false });
        const received = new Set<number>();
        returned.clear();
        await ch.consume(
          queue,
          (msg) => {
            if (msg) received.add((JSON.parse(msg.content.toString()) as { n: number }).n);
          },
          { noAck: true },
        );
        const results: Promise<'sent' | 'unroutable' | 'other'>[] = [];
        let n = 0;
        for (let batch = 0; batch < 40; batch++) {
          if (batch === 2 + (round % 15)) void ch.deleteQueue(queue).catch(() => undefined);
          for (let i = 0; i < 10; i++) {
            const body = Buffer.from(JSON.stringify({ n: n++ }));
            results.push(
              publisher.publish('', queue, body, { messageId: 'one-refund' }, 10_000).then(
                () => 'sent' as const,
                (err: unknown) =>
                  err instanceof PublishError && err.code === 'unroutable' ? 'unroutable' : 'other',
              ),
            );
          }
          await turn();
        }
        const outcomes = await Promise.all(results);
        await ch.close().catch(() => undefined);
        outcomes.forEach((o, i) => {
          if (o === 'unroutable' && received.has(i))
            wrong.push(`round ${round}: copy ${i} taken, reported unroutable`);
          if (o === 'unroutable' && !returned.has(i))
            wrong.push(`round ${round}: copy ${i} not returned, reported unroutable`);
          if (o === 'sent' && returned.has(i))
            wrong.push(`round ${round}: copy ${i} returned, reported sent`);
        });
        returnedTotal += outcomes.filter((o) => o === 'unroutable').length;
        routedTotal += received.size;
        expect(outcomes.filter((o) => o === 'other')).toEqual([]);
      }
      await publisher.close();
    } finally {
      await model?.close().catch(() => undefined);
      await admin.conn.close().catch(() => undefined);
    }
    // The rounds did exercise both sides: copies taken, and copies returned.
    expect(routedTotal).toBeGreaterThan(0);
    expect(returnedTotal).toBeGreaterThan(0);
    expect(wrong).toEqual([]);
  }, 300_000);
});
