/**
 * The refund worker: consumes `stripe_refund_requests` with manual acks and bounded prefetch, and acks
 * only after the ledger holds the outcome. Transient Stripe failures go back through the delay queues;
 * permanent ones and exhausted retries are dead-lettered with the ledger showing `failed`.
 */
import type { Logger } from 'pino';
import type { Broker, Consumer, Delivery, Outcome } from '../queue/index.js';
import type { RateLimiter } from '../queue/index.js';
import type { RefundRequestMessage, RefundService } from './service.js';

export interface RefundWorkerOptions {
  broker: Broker;
  refunds: RefundService;
  logger: Logger;
  queue: string;
  prefetch: number;
  maxAttempts: number;
  /** The broker's delivery limit: a message handed out this often without an ack is given up on. */
  deliveryLimit: number;
  limiter: RateLimiter;
}

function keyOf(d: Delivery<unknown>): string | null {
  const body = d.body as Partial<RefundRequestMessage> | null;
  return body &&
    typeof body === 'object' &&
    typeof body.request_key === 'string' &&
    body.request_key.length > 0
    ? body.request_key
    : null;
}

export async function startRefundWorker(opts: RefundWorkerOptions): Promise<Consumer> {
  const { refunds, limiter } = opts;
  const log = opts.logger.child({ component: 'refund-worker' });

  async function handle(d: Delivery<unknown>): Promise<Outcome> {
    const key = keyOf(d);
    if (!key) {
      log.warn({ messageId: d.messageId }, 'malformed refund message dead-lettered');
      return { kind: 'dead-letter', reason: 'malformed message: no request_key' };
    }
    await limiter.acquire();
    try {
      const result = await refunds.process(key, d.attempt + 1 >= opts.maxAttempts);
      if (result.kind === 'done') return { kind: 'ack' };
      if (result.kind === 'retry') return { kind: 'retry', reason: result.reason };
      return { kind: 'dead-letter', reason: result.reason };
    } catch (err) {
      // An unexpected failure (store down, bug): let the broker redeliver; on the last delivery the
      // ledger is told, so a poison message never leaves a refund stuck in `processing`.
      if ((d.deliveryCount ?? 0) + 1 >= opts.deliveryLimit) {
        await refunds.recordFailure(key, 'worker_error').catch(() => undefined);
      }
      log.error({ err, request_id: key }, 'refund worker failed on a message');
      throw err;
    }
  }

  const consumer = await opts.broker.consume<unknown>(opts.queue, handle, {
    prefetch: opts.prefetch,
    maxAttempts: opts.maxAttempts,
  });
  log.info({ queue: opts.queue, prefetch: opts.prefetch }, 'refund worker consuming');
  return consumer;
}
