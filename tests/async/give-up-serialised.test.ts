/**
 * The worker never works on one refund from two deliveries at once (the per-refund chain in worker.ts): a second
 * message for it (a relay's republish, the sweep's copy) waits for the first. That includes the first delivery's
 * give-up at the delivery limit (`worker_error`): were the second delivery to call Stripe while the refund is being
 * marked failed, other services would read a `failed` outcome and then a `succeeded` one.
 *
 * In process (the race is inside the worker): the in-process broker, and a refund service of the test's own whose
 * processing fails until the refund is given up on, and whose give-up waits until the test lets it finish.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  createMemoryBroker,
  createRateLimiter,
  resolveTopology,
  type Broker,
  type Delivery,
  type Handler,
} from '../../src/queue/index.js';
import type { Refund } from '../../src/store/index.js';
import type { ProcessResult, RefundService } from '../../src/refunds/service.js';
import { startRefundWorker } from '../../src/refunds/worker.js';
import { captureLogger } from '../helpers/log-capture.js';

const names = resolveTopology();
const opened: Broker[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((b) => b.close()));
});

function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Lets every pending callback and promise continuation run (the worker's chain is a few of them deep). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

describe('refund worker: the give-up at the delivery limit', () => {
  it('runs in the refund’s own line: a second delivery reaches Stripe only after the refund is given up on', async () => {
    const { logger } = captureLogger('info');
    const broker = createMemoryBroker({ deliveryLimit: 1, logger });
    opened.push(broker);
    await broker.start();

    const key = 'req-serialised-give-up';
    const events: string[] = [];
    let givingUp = false;
    let endGiveUp!: () => void;
    const giveUpHeld = new Promise<void>((resolve) => (endGiveUp = resolve));
    const gaveUpStarted = signal();
    const secondDelivered = signal();

    const refunds = {
      // What process() does per delivery: fails (a bug, an unreadable row) until the refund was given up on; then it
      // is a later delivery's turn, the one that would call Stripe.
      process(k: string): Promise<ProcessResult> {
        if (!givingUp && !events.includes('give-up done')) {
          events.push('process: failed');
          return Promise.reject(new Error('unexpected failure'));
        }
        events.push(givingUp ? 'process: Stripe called DURING the give-up' : 'process: after the give-up');
        const refund = { requestId: k, status: 'failed', stripeRefundId: null } as unknown as Refund;
        return Promise.resolve({ kind: 'done', refund });
      },
      async giveUpUnlessMade(): Promise<Refund | null> {
        givingUp = true;
        events.push('give-up started');
        gaveUpStarted.resolve();
        await giveUpHeld;
        givingUp = false;
        events.push('give-up done');
        return null;
      },
    } as unknown as RefundService;

    // The broker as the worker sees it; the test only notes when the second message reaches the worker's handler.
    const observed: Broker = Object.create(broker) as Broker;
    observed.consume = <T>(queue: string, handler: Handler<T>, opts: Parameters<Broker['consume']>[2]) =>
      broker.consume<T>(
        queue,
        (d: Delivery<T>) => {
          if (d.messageId === 'second') secondDelivered.resolve();
          return handler(d);
        },
        opts,
      );

    const worker = await startRefundWorker({
      broker: observed,
      refunds,
      logger,
      queue: names.requests,
      prefetch: 2,
      maxAttempts: 3,
      deliveryLimit: 1,
      limiter: createRateLimiter(null),
      crashBackoffMs: 1,
      storePing: () => Promise.resolve(),
    });
    try {
      await broker.publish({ queue: names.requests }, { request_key: key }, { messageId: 'first' });
      await gaveUpStarted.promise; // the first message's last delivery failed; the refund is being given up on
      await broker.publish({ queue: names.requests }, { request_key: key }, { messageId: 'second' });
      await secondDelivered.promise;
      await settle();
      endGiveUp();
      await settle();
      for (let i = 0; i < 100 && !events.some((e) => e.startsWith('process: after')); i++) await settle();
    } finally {
      endGiveUp();
      await worker.cancel();
    }

    expect(events).toEqual([
      'process: failed',
      'process: failed',
      'give-up started',
      'give-up done',
      'process: after the give-up',
    ]);
  });
});
