/** Queue depth checks and clean-up of the queues a bench run declared (all under its own prefix). */
import { connect } from 'amqplib';

const RETRY_DELAYS_MS = [1000, 5000, 25000, 120000];

/** Every queue and exchange the service declares under QUEUE_PREFIX=<prefix> (see src/queue/topology.ts). */
export function prefixedNames(prefix: string): { queues: string[]; exchanges: string[] } {
  const requests = `${prefix}.stripe_refund_requests`;
  const responses = `${prefix}.stripe_refund_responses`;
  return {
    queues: [
      requests,
      `${prefix}.stripe_refund_requests.dlq`,
      ...RETRY_DELAYS_MS.map((ms) => `${prefix}.stripe_refund_requests.retry.${ms}ms`),
      responses,
      `${responses}.dlq`,
    ],
    exchanges: [`${prefix}.stripe.events`],
  };
}

export async function queueDepth(url: string, queue: string): Promise<number | null> {
  const conn = await connect(url);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    try {
      return (await ch.checkQueue(queue)).messageCount;
    } catch {
      return null;
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Deletes what `prefixedNames` lists; a missing queue is not an error. Returns how many it deleted. */
export async function deletePrefixed(url: string, prefixes: readonly string[]): Promise<number> {
  const conn = await connect(url);
  let deleted = 0;
  try {
    for (const prefix of prefixes) {
      const { queues, exchanges } = prefixedNames(prefix);
      for (const q of queues) {
        // A failed operation closes its channel, so each gets its own.
        const ch = await conn.createChannel();
        ch.on('error', () => undefined);
        try {
          await ch.checkQueue(q);
          await ch.deleteQueue(q);
          deleted++;
          await ch.close();
        } catch {
          // not declared in this run
        }
      }
      for (const x of exchanges) {
        const ch = await conn.createChannel();
        ch.on('error', () => undefined);
        try {
          await ch.checkExchange(x);
          await ch.deleteExchange(x);
          await ch.close();
        } catch {
          // not declared in this run
        }
      }
    }
  } finally {
    await conn.close().catch(() => undefined);
  }
  return deleted;
}
