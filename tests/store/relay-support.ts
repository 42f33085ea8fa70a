/** Set-up of the outbox relay tests: a memory broker slow to confirm, and what a queue of it receives. */
import { vi } from 'vitest';
import { createMemoryBroker } from '../../src/queue/memory-broker.js';
import type { Broker, Delivery } from '../../src/queue/types.js';
import { gated } from './harness.js';

/** Subscribes to `queue` on `broker`, acking every delivery (prefetch 10): answers the deliveries as they come. */
export async function collect(broker: Broker, queue: string): Promise<Delivery[]> {
  const got: Delivery[] = [];
  await broker.consume(
    queue,
    async (d) => {
      got.push(d);
      return { kind: 'ack' };
    },
    { prefetch: 10, maxAttempts: 1 },
  );
  return got;
}

/**
 * A started memory broker slow to confirm: every publish waits until `open()` is called, then goes through, or with
 * `refuse` fails with that message. `sent.publishes` counts the publishes asked for.
 */
export async function slowBroker(opts: { refuse?: string } = {}) {
  const broker = createMemoryBroker();
  await broker.start();
  const { gate, open } = gated();
  const sent = { publishes: 0 };
  const publish = broker.publish.bind(broker);
  vi.spyOn(broker, 'publish').mockImplementation(async (...args) => {
    sent.publishes++;
    await gate;
    if (opts.refuse !== undefined) throw new Error(opts.refuse);
    return publish(...args);
  });
  return { broker, open, sent };
}
