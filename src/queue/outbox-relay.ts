/**
 * Transactional outbox relay: moves rows written in the same transaction as a ledger change onto the
 * broker, and marks them sent only after the broker confirmed them. If the broker is down the rows
 * wait; nothing accepted is lost, and a row published twice is harmless because consumers are idempotent.
 */
import type { Logger } from 'pino';
import type { OutboxMessage, Store } from '../store/index.js';
import type { Broker, Destination } from './types.js';

export interface OutboxRelayOptions {
  store: Store;
  broker: Broker;
  logger: Logger;
  batchSize?: number;
  /** How long to sleep when there was nothing to send (a commit wakes it sooner through notify()). */
  idleMs?: number;
  /** First retry delay after a failed publish; doubles per attempt up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /**
   * How long a claimed batch is hidden from other relays. It must outlast a publish waiting for its
   * confirm (10 s by default); after a crash it is also how long the claimed rows wait (default 15 s).
   */
  leaseMs?: number;
  /** Bound on the final flush in stop() (default 5 s). */
  flushTimeoutMs?: number;
}

export interface OutboxRelay {
  start(): void;
  /** Wakes the relay now: call after committing a transaction that added outbox rows. */
  notify(): void;
  /**
   * Stops after the batch in progress, then publishes what is ready (bounded by flushTimeoutMs) so the
   * outcomes written by the last refunds leave with this process instead of waiting for another relay.
   */
  stop(): Promise<void>;
  /** Publishes until the outbox has nothing ready (tests, shutdown). */
  drain(timeoutMs?: number): Promise<void>;
}

const EXCHANGE_PREFIX = 'exchange:';

export function destinationOf(m: Pick<OutboxMessage, 'destination' | 'routingKey'>): Destination {
  return m.destination.startsWith(EXCHANGE_PREFIX)
    ? { exchange: m.destination.slice(EXCHANGE_PREFIX.length), routingKey: m.routingKey }
    : { queue: m.destination };
}

export function createOutboxRelay(opts: OutboxRelayOptions): OutboxRelay {
  const { store, broker } = opts;
  const log = opts.logger.child({ component: 'outbox-relay' });
  const batchSize = opts.batchSize ?? 200;
  const idleMs = opts.idleMs ?? 250;
  const backoffMs = opts.backoffMs ?? 500;
  const maxBackoffMs = opts.maxBackoffMs ?? 30_000;
  const leaseMs = opts.leaseMs ?? 15_000;
  const flushTimeoutMs = opts.flushTimeoutMs ?? 5_000;
  let running = false;
  let wake: (() => void) | null = null;
  let pendingWake = false;
  let loop: Promise<void> | null = null;

  function sleep(ms: number): Promise<void> {
    if (pendingWake) {
      pendingWake = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = null;
        resolve();
      }
      wake = done;
    });
  }

  /** Publishes one claimed batch; returns how many rows it handled. */
  async function runBatch(): Promise<number> {
    if (!broker.isConnected()) return 0;
    const batch = await store.outbox.claimBatch(batchSize, new Date(), leaseMs);
    if (batch.length === 0) return 0;
    const results = await Promise.allSettled(
      batch.map((m) =>
        broker.publish(destinationOf(m), m.payload, {
          messageId: m.messageId,
          ...(m.headers ? { headers: m.headers } : {}),
        }),
      ),
    );
    const sent: number[] = [];
    for (const [i, r] of results.entries()) {
      const m = batch[i]!;
      if (r.status === 'fulfilled') sent.push(m.id);
      else {
        const delay = Math.min(maxBackoffMs, backoffMs * 2 ** Math.min(m.attempts, 16));
        const reason = r.reason instanceof Error ? r.reason.message : String(r.reason);
        await store.outbox.markFailed(m.id, reason, new Date(Date.now() + delay));
        log.warn(
          { messageId: m.messageId, destination: m.destination, reason },
          'publish failed; will retry',
        );
      }
    }
    if (sent.length > 0) await store.outbox.markSent(sent);
    return batch.length;
  }

  async function run(): Promise<void> {
    while (running) {
      let handled = 0;
      try {
        handled = await runBatch();
      } catch (err) {
        log.error({ err }, 'outbox relay batch failed');
        await sleep(1000);
        continue;
      }
      if (handled < batchSize) await sleep(idleMs);
    }
  }

  broker.onStateChange((connected) => {
    if (connected) relay.notify();
  });

  const relay: OutboxRelay = {
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    notify() {
      if (wake) wake();
      else pendingWake = true;
    },
    async stop() {
      running = false;
      relay.notify();
      await loop;
      loop = null;
      const deadline = Date.now() + flushTimeoutMs;
      let flushed = 0;
      try {
        while (broker.isConnected() && Date.now() < deadline) {
          const handled = await runBatch();
          flushed += handled;
          if (handled < batchSize) break;
        }
      } catch (err) {
        log.warn({ err }, 'final outbox flush failed; the rows stay for the next relay');
      }
      if (flushed > 0) log.info({ rows: flushed }, 'outbox flushed on stop');
    },
    async drain(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while ((await store.outbox.pendingCount()) > 0) {
        if (Date.now() > deadline) throw new Error('outbox did not drain in time');
        if (!running) await runBatch();
        else relay.notify();
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
  return relay;
}
