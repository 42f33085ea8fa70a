/**
 * What only the in-process driver does: in embedded mode nobody in the process reads the responses queue
 * or the dead-letter queues (other services read them over RabbitMQ), so it keeps the newest messages of
 * those up to a limit instead of holding every refund outcome until the heap runs out. Work queues are
 * never bounded: a dropped refund request would be a refund accepted and then lost.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryBroker, resolveTopology, type Broker, type Delivery } from '../../src/queue/index.js';
import { captureLogger } from '../helpers/log-capture.js';

const names = resolveTopology();
const opened: Broker[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((b) => b.close()));
});

async function broker(retainLimit: number) {
  const { logger, lines } = captureLogger('info');
  const b = createMemoryBroker({ retainLimit, logger });
  opened.push(b);
  await b.start();
  return { broker: b, lines };
}

async function publishMany(b: Broker, queue: string, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) await b.publish({ queue }, { n: i }, { messageId: `${queue}-${i}` });
}

describe('in-process queue (embedded mode)', () => {
  it('keeps only the newest responses once the limit is reached, and logs the first drop and every limit-th', async () => {
    const { broker: b, lines } = await broker(3);
    await publishMany(b, names.responses, 7);

    expect(await b.queueDepth(names.responses)).toBe(3);
    const seen: Delivery<{ n: number }>[] = [];
    await b.consume<{ n: number }>(
      names.responses,
      async (d) => {
        seen.push(d);
        return { kind: 'ack' };
      },
      { prefetch: 10, maxAttempts: 1 },
    );
    await expect.poll(() => seen.length).toBe(3);
    expect(seen.map((d) => d.body.n)).toEqual([5, 6, 7]);

    const warnings = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['dropped']);
    // The first drop, then one line per further `limit` drops: 1 and 3 of the 4 dropped here.
    expect(warnings.map((w) => [w['queue'], w['dropped'], w['limit']])).toEqual([
      [names.responses, 1, 3],
      [names.responses, 3, 3],
    ]);
  });

  it('bounds the dead-letter queues the same way', async () => {
    const { broker: b } = await broker(2);
    await publishMany(b, names.deadLetter, 5);
    await publishMany(b, `${names.responses}.dlq`, 4);
    expect(await b.queueDepth(names.deadLetter)).toBe(2);
    expect(await b.queueDepth(`${names.responses}.dlq`)).toBe(2);
  });

  it('never drops a refund request, however many wait for a worker', async () => {
    const { broker: b } = await broker(2);
    await publishMany(b, names.requests, 50);
    expect(await b.queueDepth(names.requests)).toBe(50);
  });

  it('reports how much room its work queues have left (their delay queues count, retained queues do not)', async () => {
    const b = createMemoryBroker({ maxBacklog: 10, retryDelaysMs: [60_000] });
    opened.push(b);
    await b.start();
    expect(b.room!()).toBe(10);
    await publishMany(b, names.requests, 4);
    await publishMany(b, names.responses, 5);
    await publishMany(b, names.deadLetter, 5);
    expect(b.room!()).toBe(6);
    // A retry waits in a delay queue: still in memory, still counted.
    const taken: string[] = [];
    const consumer = await b.consume(
      names.requests,
      async (d) => {
        taken.push(d.messageId);
        return taken.length === 1 ? { kind: 'retry', reason: 'later' } : { kind: 'ack' };
      },
      { prefetch: 1, maxAttempts: 3 },
    );
    await expect.poll(() => taken.length).toBe(4);
    expect(await b.queueDepth(names.requests)).toBe(0);
    expect(b.room!()).toBe(9);
    await consumer.cancel();
    await publishMany(b, names.requests, 20);
    expect(b.room!()).toBe(0); // never negative: publishing past the bound still works
    expect(await b.queueDepth(names.requests)).toBe(20);
  });

  it('refuses a limit that is not a positive integer', () => {
    expect(() => createMemoryBroker({ retainLimit: 0 })).toThrow(/retainLimit/);
    expect(() => createMemoryBroker({ retainLimit: 1.5 })).toThrow(/retainLimit/);
    expect(() => createMemoryBroker({ maxBacklog: 0 })).toThrow(/maxBacklog/);
  });
});
