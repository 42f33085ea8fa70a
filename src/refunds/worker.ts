/**
 * The refund worker: consumes `stripe_refund_requests` with manual acks and bounded prefetch, and acks
 * only after the ledger holds the outcome. Transient Stripe failures go back through the delay queues;
 * permanent ones and exhausted retries are dead-lettered with the ledger showing `failed`.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Broker, Consumer, Delivery, Outcome } from '../queue/index.js';
import { StoreUnavailableError, type Refund } from '../store/index.js';
import { readRequestId, type RateLimiter } from '../queue/index.js';
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
  /** Pause before a failed delivery goes back to the queue; doubles per redelivery (default 250 ms, max 5 s). */
  crashBackoffMs?: number;
  /** Resolves once the store answers again (a trivial query); rejects while it does not. */
  storePing: () => Promise<void>;
  /**
   * How long one delivery may wait for the store to come back before it fails like any other (default 5 min,
   * well inside RabbitMQ's 30 min consumer timeout). See handle().
   */
  storeOutageHoldMs?: number;
}

const MAX_CRASH_BACKOFF_MS = 5_000;

function keyOf(d: Delivery<unknown>): string | null {
  const body = d.body as Partial<RefundRequestMessage> | null;
  return body &&
    typeof body === 'object' &&
    typeof body.request_key === 'string' &&
    body.request_key.length > 0
    ? body.request_key
    : null;
}

/** Failed without Stripe having made it: what the worker dead-letters (a failed refund with a Stripe id is Stripe's). */
function givenUp(refund: Refund): boolean {
  return refund.status === 'failed' && refund.stripeRefundId === null;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const DEFAULT_STORE_OUTAGE_HOLD_MS = 5 * 60_000;

export async function startRefundWorker(opts: RefundWorkerOptions): Promise<Consumer> {
  const { refunds, limiter } = opts;
  const log = opts.logger.child({ component: 'refund-worker' });
  const crashBackoffMs = opts.crashBackoffMs ?? 250;
  const storeOutageHoldMs = opts.storeOutageHoldMs ?? DEFAULT_STORE_OUTAGE_HOLD_MS;
  /** Aborted by cancel(): deliveries waiting for the store give up waiting and go back to the queue. */
  const stopping = new AbortController();
  // On cancel() a delivery still waiting for the limiter leaves the line, its attempt is taken back (see
  // ProcessOptions.beforeStripeCall) and its message goes back to the queue as it came.
  const beforeStripeCall = () => limiter.acquire(stopping.signal);
  // Two messages for one refund (a relay republish after a crash, a sweep) would otherwise call Stripe at
  // the same moment with the same idempotency key and earn a 409 and a pointless retry. The second waits.
  // So does a second message while the refund is given up on at the delivery limit (handle()): it would call
  // Stripe while the refund is marked failed, and other services would read `failed` and then `succeeded`.
  const running = new Map<string, Promise<unknown>>();

  /** Runs `task` after everything already queued for the refund `key` has finished (well or not). */
  async function inLine<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = running.get(key) ?? Promise.resolve();
    const work = previous.catch(() => undefined).then(task);
    running.set(key, work);
    try {
      return await work;
    } finally {
      if (running.get(key) === work) running.delete(key);
    }
  }

  function processOnce(key: string, isLastAttempt: boolean, reqId: string | undefined) {
    return inLine(key, () => refunds.process(key, isLastAttempt, { beforeStripeCall, reqId }));
  }

  /**
   * Waits until the store answers again: true, or false when the worker is stopping or `until` (performance.now()
   * time) has passed. The first pause also lets a pool drop the connections the outage broke before the next try
   * takes one.
   */
  async function storeBack(until: number): Promise<boolean> {
    for (let pause = crashBackoffMs; ; pause = Math.min(pause * 2, MAX_CRASH_BACKOFF_MS)) {
      if (stopping.signal.aborted || performance.now() + pause > until) return false;
      try {
        await delay(pause, undefined, { signal: stopping.signal });
        await opts.storePing();
        return true;
      } catch {
        // still away, or stopping (checked above)
      }
    }
  }

  /**
   * processOnce, run again in place while the store is unavailable. Giving the message back instead would spend
   * the broker's delivery limit (5 redeliveries, about 8 s of backoff) on an outage: a failover that long would
   * dead-letter every refund the worker touched meanwhile (left `processing` until the stuck-refund sweep, or
   * marked failed `worker_error` although Stripe may have made it). Each run is safe to repeat (the refund's
   * idempotency key, and a look at Stripe first on a later attempt).
   */
  async function processThroughOutage(key: string, isLastAttempt: boolean, reqId: string | undefined) {
    // Elapsed time, not the wall clock: a step of the clock must neither end the wait at once (the delivery would be
    // spent on the outage) nor stretch it past RabbitMQ's consumer timeout.
    const until = performance.now() + storeOutageHoldMs;
    for (;;) {
      try {
        return await processOnce(key, isLastAttempt, reqId);
      } catch (err) {
        if (!(err instanceof StoreUnavailableError)) throw err;
        log.warn({ err, request_id: key, reqId }, 'store unavailable; the refund waits for it');
        if (!(await storeBack(until))) throw err;
      }
    }
  }

  async function handle(d: Delivery<unknown>): Promise<Outcome> {
    const key = keyOf(d);
    // The id of the HTTP request that asked for the refund (absent from a message queued by the stuck-refund sweep
    // without one to copy, or by a version before it was carried): on every line about the refund from here.
    const reqId = readRequestId(d.headers);
    if (!key) {
      log.warn({ messageId: d.messageId, reqId }, 'malformed refund message dead-lettered');
      return { kind: 'dead-letter', reason: 'malformed message: no request_key' };
    }
    try {
      const result = await processThroughOutage(key, d.attempt + 1 >= opts.maxAttempts, reqId);
      if (result.kind === 'done' && d.redelivered && givenUp(result.refund)) {
        // A message handed out again for a refund already given up on: its dead-letter copy failed (the queue
        // deleted, no confirm) and the broker requeued it, or the process died between the ledger and the copy.
        // Acked as done, it would never reach the dead-letter queue; copied there now (at worst a second copy).
        return { kind: 'dead-letter', reason: result.refund.failureReason ?? 'failed' };
      }
      if (result.kind === 'done') return { kind: 'ack' };
      if (result.kind === 'retry') return { kind: 'retry', reason: result.reason };
      return { kind: 'dead-letter', reason: result.reason };
    } catch (err) {
      if (stopping.signal.aborted && err === stopping.signal.reason) {
        // Stopping while it waited for the rate limiter: nothing was sent, so the message goes back as it came.
        log.info({ request_id: key, reqId }, 'refund given back to the queue at shutdown; nothing was sent');
        return { kind: 'release' };
      }
      if (stopping.signal.aborted && err instanceof StoreUnavailableError) {
        // Stopping while it waited for the store (processThroughOutage): given back as it came too, not as a failed
        // delivery, as an outage spends no delivery (a process restarted during a long one would otherwise count one
        // per restart, and a few restarts dead-letter the refund). Stripe may have made it: the next delivery's
        // attempt looks there first.
        log.info(
          { request_id: key, reqId },
          'refund given back to the queue at shutdown while the store is unavailable',
        );
        return { kind: 'release' };
      }
      // An unexpected failure (store down, unreadable ledger row, bug): the broker redelivers it and its
      // delivery limit stops a poison message. The broker dead-letters once the delivery count (x-delivery-count,
      // plus the failures before a release at shutdown) would pass the limit, so the delivery whose count equals
      // it is the last: the ledger is told then, so the refund is not left in `processing`.
      const deliveryCount = d.deliveryCount ?? 0;
      log.error({ err, request_id: key, reqId, deliveryCount }, 'refund worker failed on a message');
      if (deliveryCount >= opts.deliveryLimit) {
        await inLine(key, () => refunds.giveUpUnlessMade(key, 'worker_error', reqId)).catch((e: unknown) => {
          log.error({ err: e, request_id: key, reqId }, 'could not record the failure of a poison message');
        });
      } else {
        // Without a pause a store outage would burn the whole delivery limit in milliseconds.
        await sleep(Math.min(crashBackoffMs * 2 ** deliveryCount, MAX_CRASH_BACKOFF_MS));
      }
      throw err;
    }
  }

  const consumer = await opts.broker.consume<unknown>(opts.queue, handle, {
    prefetch: opts.prefetch,
    maxAttempts: opts.maxAttempts,
  });
  log.info({ queue: opts.queue, prefetch: opts.prefetch }, 'refund worker consuming');
  return {
    async cancel() {
      stopping.abort();
      await consumer.cancel();
    },
    isSubscribed: () => consumer.isSubscribed(),
  };
}
