/**
 * The in-process driver for embedded mode (no RabbitMQ configured). Same contract and the same
 * topology as the RabbitMQ driver: quorum-like queues with a delivery limit and dead-letter route,
 * delay queues whose messages expire back into their work queue, a topic exchange, prefetch.
 * Nothing is durable: unfinished work is re-enqueued from the ledger at start-up.
 *
 * Differences that do not change the contract: a delay queue releases each message on its own
 * timer (no head-of-line wait), and only the `delivery_limit` death is recorded in `x-death`.
 *
 * One difference that does: the queues other services read (the responses queue) and the dead-letter
 * queues keep at most `retainLimit` messages each, dropping the oldest. Over RabbitMQ other processes
 * consume them; in process nobody can, so without a bound every refund outcome would stay in memory
 * until the heap ran out. The ledger keeps every outcome either way (GET /refund-status).
 */
import { pino, type Logger } from 'pino';
import { BrokerUnavailableError, PublishError } from './errors.js';
import {
  DELIVERY_LIMIT_REASON,
  PRIOR_DELIVERIES_HEADER,
  decideSettlement,
  deadLetterHeaders,
  isOutcome,
  readAttempt,
  readDeliveryCount,
  readPriorDeliveries,
  readRequestId,
  retryHeaders,
  validateConsumeOptions,
} from './settlement.js';
import { topicMatches } from './topic-match.js';
import {
  baseTopologySpecs,
  DELIVERY_COUNT_HEADER,
  familySpecs,
  jitteredDelay,
  levelForAttempt,
  queueFamily,
  resolveTopology,
  validateDeliveryLimit,
  validateRetryDelays,
  workQueueSpec,
  type QueueSpec,
} from './topology.js';
import { waitBounded } from './wait-bounded.js';
import type {
  Broker,
  ConsumeOptions,
  Consumer,
  Delivery,
  Destination,
  Handler,
  Outcome,
  PublishOptions,
  TopologyNames,
} from './types.js';

export interface MemoryBrokerOptions {
  topology?: Partial<TopologyNames>;
  retryDelaysMs?: number[];
  deliveryLimit?: number;
  logger?: Logger;
  /**
   * Bound on waiting for in-flight handlers in cancel() and close() (default 20 s: the Stripe SDK's default
   * timeout, and inside the process's 25 s shutdown, which still has to drain HTTP and flush the outbox).
   */
  drainTimeoutMs?: number;
  /**
   * Most messages kept in the responses queue and in each dead-letter queue (default 1,000); past it
   * the oldest is dropped. Work queues (refund requests, their retries) are never bounded.
   */
  retainLimit?: number;
  /**
   * Most messages the work queues (and their delay queues) should hold in memory together (default 2,000,
   * ~0.7 MB): see Broker.room. Publishing past it still works; the outbox relay asks before it publishes.
   */
  maxBacklog?: number;
}

const DEFAULT_RETAIN_LIMIT = 1_000;
const DEFAULT_MAX_BACKLOG = 2_000;

interface StoredMessage {
  /** Kept serialised, so consumers get a copy exactly as the RabbitMQ driver would hand it over. */
  content: string;
  messageId: string;
  headers: Record<string, unknown>;
  redelivered: boolean;
  /** Unacknowledged returns so far (quorum queues' x-delivery-count). */
  returns: number;
}

interface MemoryQueue {
  spec: QueueSpec;
  ready: StoredMessage[];
  /** Messages waiting in a delay queue, keyed by their expiry timer. */
  delayed: Map<ReturnType<typeof setTimeout>, StoredMessage>;
  consumers: MemoryConsumer[];
  nextConsumer: number;
  dispatchScheduled: boolean;
}

interface MemoryConsumer {
  queue: MemoryQueue;
  handler: Handler<unknown>;
  opts: ConsumeOptions;
  active: boolean;
  inflight: Set<Promise<void>>;
  cancelling: Promise<void> | null;
}

interface Binding {
  queue: string;
  pattern: string;
}

export function createMemoryBroker(opts: MemoryBrokerOptions = {}): Broker {
  return new MemoryBroker(opts);
}

class MemoryBroker implements Broker {
  readonly kind = 'memory' as const;

  private readonly topology: TopologyNames;
  private readonly delays: number[];
  private readonly deliveryLimit: number;
  private readonly logger: Logger;
  private readonly drainTimeoutMs: number;
  private readonly retainLimit: number;
  private readonly maxBacklog: number;
  /** Queues whose messages nobody in this process needs: the responses queue and every dead-letter queue. */
  private readonly retained = new Set<string>();
  /** Messages dropped so far from each retained queue. */
  private readonly dropped = new Map<string, number>();
  private readonly queues = new Map<string, MemoryQueue>();
  private readonly exchanges = new Map<string, Binding[]>();
  private readonly stateListeners = new Set<(connected: boolean) => void>();
  private readonly consumers = new Set<MemoryConsumer>();
  private state: 'new' | 'running' | 'closed' = 'new';
  private closing: Promise<void> | null = null;

  constructor(opts: MemoryBrokerOptions) {
    this.topology = resolveTopology(opts.topology);
    this.delays = validateRetryDelays(opts.retryDelaysMs);
    this.deliveryLimit = validateDeliveryLimit(opts.deliveryLimit);
    this.logger = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'memory-queue' });
    this.drainTimeoutMs = opts.drainTimeoutMs ?? 20_000;
    this.retainLimit = opts.retainLimit ?? DEFAULT_RETAIN_LIMIT;
    if (!Number.isInteger(this.retainLimit) || this.retainLimit < 1)
      throw new RangeError('retainLimit must be a positive integer');
    this.maxBacklog = opts.maxBacklog ?? DEFAULT_MAX_BACKLOG;
    if (!Number.isInteger(this.maxBacklog) || this.maxBacklog < 1)
      throw new RangeError('maxBacklog must be a positive integer');
    this.retained.add(this.topology.responses);
    this.declare(baseTopologySpecs(this.topology, this.delays, this.deliveryLimit));
    this.exchanges.set(this.topology.events, []);
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  start(): Promise<void> {
    if (this.state === 'closed') return Promise.reject(new BrokerUnavailableError('broker is closed'));
    if (this.state === 'new') {
      this.state = 'running';
      this.logger.info('in-process queue started (embedded mode: messages are not durable)');
      this.notify(true);
      for (const queue of this.queues.values()) this.scheduleDispatch(queue);
    }
    return Promise.resolve();
  }

  isConnected(): boolean {
    return this.state === 'running';
  }

  onStateChange(fn: (connected: boolean) => void): void {
    this.stateListeners.add(fn);
  }

  private notify(connected: boolean): void {
    for (const listener of this.stateListeners) {
      try {
        listener(connected);
      } catch (err) {
        this.logger.error({ err }, 'a broker state listener threw');
      }
    }
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    await Promise.all([...this.consumers].map((consumer) => this.cancelConsumer(consumer)));
    for (const queue of this.queues.values()) {
      for (const timer of queue.delayed.keys()) clearTimeout(timer);
      queue.delayed.clear();
    }
    const wasRunning = this.state === 'running';
    this.state = 'closed';
    if (wasRunning) this.notify(false);
  }

  // ---- topology --------------------------------------------------------------------------------

  private declare(specs: readonly QueueSpec[]): void {
    for (const spec of specs) {
      // A work queue's dead-letter target (delay queues dead-letter back into their work queue).
      if (spec.deliveryLimit !== undefined && spec.deadLetterTo !== undefined)
        this.retained.add(spec.deadLetterTo);
      if (this.queues.has(spec.name)) continue;
      this.queues.set(spec.name, {
        spec,
        ready: [],
        delayed: new Map(),
        consumers: [],
        nextConsumer: 0,
        dispatchScheduled: false,
      });
    }
  }

  bind(queue: string, exchange: string, pattern: string): Promise<void> {
    const bindings = this.exchanges.get(exchange);
    if (!bindings) return Promise.reject(new Error(`exchange ${JSON.stringify(exchange)} does not exist`));
    const family = queueFamily(queue, this.topology, this.delays);
    this.declare([workQueueSpec(queue, family.deadLetter, this.deliveryLimit), { name: family.deadLetter }]);
    if (!bindings.some((b) => b.queue === queue && b.pattern === pattern)) bindings.push({ queue, pattern });
    return Promise.resolve();
  }

  queueDepth(queue: string): Promise<number | null> {
    const found = this.queues.get(queue);
    return Promise.resolve(found ? found.ready.length + found.delayed.size : null);
  }

  room(): number {
    let backlog = 0;
    for (const [name, queue] of this.queues)
      if (!this.retained.has(name)) backlog += queue.ready.length + queue.delayed.size;
    return Math.max(0, this.maxBacklog - backlog);
  }

  // ---- publishing ------------------------------------------------------------------------------

  async publish(dest: Destination, body: unknown, opts: PublishOptions): Promise<void> {
    if (typeof opts.messageId !== 'string' || opts.messageId === '')
      throw new TypeError('messageId is required');
    const content = JSON.stringify(body);
    if (content === undefined) throw new TypeError('body must be JSON-serialisable');
    if (this.state !== 'running') throw new BrokerUnavailableError();
    const message: StoredMessage = {
      content,
      messageId: opts.messageId,
      headers: { ...(opts.headers ?? {}) },
      redelivered: false,
      returns: 0,
    };
    const [exchange, routingKey] = 'queue' in dest ? ['', dest.queue] : [dest.exchange, dest.routingKey];
    if (exchange === '') {
      this.enqueue(routingKey, message);
      return;
    }
    const bindings = this.exchanges.get(exchange);
    if (!bindings)
      throw new PublishError('channel-closed', `exchange ${JSON.stringify(exchange)} does not exist`);
    const targets = new Set(bindings.filter((b) => topicMatches(b.pattern, routingKey)).map((b) => b.queue));
    for (const queue of targets) this.enqueue(queue, { ...message, headers: { ...message.headers } });
  }

  private enqueue(queueName: string, message: StoredMessage, expirationMs?: number): void {
    const queue = this.queues.get(queueName);
    if (!queue)
      throw new PublishError('unroutable', `no queue named ${JSON.stringify(queueName)} took the message`);
    const { messageTtlMs, deadLetterTo } = queue.spec;
    if (messageTtlMs !== undefined) {
      const ttl = Math.min(messageTtlMs, expirationMs ?? Infinity);
      const timer = setTimeout(() => {
        queue.delayed.delete(timer);
        if (deadLetterTo !== undefined)
          this.moveTo(deadLetterTo, { ...message, redelivered: false, returns: 0 });
      }, ttl);
      queue.delayed.set(timer, message);
      return;
    }
    queue.ready.push(message);
    if (queue.ready.length > this.retainLimit && this.retained.has(queueName)) this.dropOldest(queue);
    this.scheduleDispatch(queue);
  }

  private dropOldest(queue: MemoryQueue): void {
    const name = queue.spec.name;
    queue.ready.shift();
    const dropped = (this.dropped.get(name) ?? 0) + 1;
    this.dropped.set(name, dropped);
    // Once, then every further retainLimit: enough to notice, never one line per message.
    if (dropped === 1 || dropped % this.retainLimit === 0)
      this.logger.warn(
        { queue: name, limit: this.retainLimit, dropped },
        'in-process queue full: dropping its oldest messages (nobody in this process consumes it)',
      );
  }

  /** Broker-side moves (expiry, delivery limit) have nobody to report a failure to but the log. */
  private moveTo(queueName: string, message: StoredMessage): void {
    try {
      this.enqueue(queueName, message);
    } catch (err) {
      this.logger.error(
        { err, queue: queueName, messageId: message.messageId },
        'dead-letter target missing; message dropped',
      );
    }
  }

  // ---- consuming -------------------------------------------------------------------------------

  consume<T>(queueName: string, handler: Handler<T>, opts: ConsumeOptions): Promise<Consumer> {
    validateConsumeOptions(opts);
    if (this.state === 'closed') return Promise.reject(new BrokerUnavailableError('broker is closed'));
    const queue = this.queues.get(queueName);
    if (!queue) return Promise.reject(new Error(`queue ${JSON.stringify(queueName)} does not exist`));
    this.declare(familySpecs(queueFamily(queueName, this.topology, this.delays)));
    const consumer: MemoryConsumer = {
      queue,
      handler: handler as Handler<unknown>,
      opts: { prefetch: opts.prefetch, maxAttempts: opts.maxAttempts },
      active: true,
      inflight: new Set(),
      cancelling: null,
    };
    queue.consumers.push(consumer);
    this.consumers.add(consumer);
    this.scheduleDispatch(queue);
    return Promise.resolve({
      cancel: () => this.cancelConsumer(consumer),
      isSubscribed: () => consumer.active && this.state === 'running',
    });
  }

  private scheduleDispatch(queue: MemoryQueue): void {
    if (queue.dispatchScheduled || this.state !== 'running') return;
    queue.dispatchScheduled = true;
    // Deferred so a publish never runs a handler inside the publisher's call stack.
    setImmediate(() => {
      queue.dispatchScheduled = false;
      this.dispatch(queue);
    });
  }

  private dispatch(queue: MemoryQueue): void {
    while (queue.ready.length > 0 && this.state === 'running') {
      const consumer = this.nextConsumerWithCapacity(queue);
      if (!consumer) return;
      const message = queue.ready.shift();
      if (!message) return;
      const task = this.handle(consumer, message)
        .catch((err: unknown) =>
          this.logger.error({ err, queue: queue.spec.name }, 'unexpected failure settling a message'),
        )
        .finally(() => {
          consumer.inflight.delete(task);
          this.scheduleDispatch(queue);
        });
      consumer.inflight.add(task);
    }
  }

  /** Round-robin over consumers, skipping those at their prefetch limit. */
  private nextConsumerWithCapacity(queue: MemoryQueue): MemoryConsumer | undefined {
    const count = queue.consumers.length;
    for (let i = 0; i < count; i++) {
      const index = (queue.nextConsumer + i) % count;
      const consumer = queue.consumers[index];
      if (consumer && consumer.active && consumer.inflight.size < consumer.opts.prefetch) {
        queue.nextConsumer = (index + 1) % count;
        return consumer;
      }
    }
    return undefined;
  }

  private async handle(consumer: MemoryConsumer, message: StoredMessage): Promise<void> {
    const headers: Record<string, unknown> = { ...message.headers };
    if (message.returns > 0) headers[DELIVERY_COUNT_HEADER] = message.returns;
    const attempt = readAttempt(headers);
    const queueName = consumer.queue.spec.name;
    const log = this.logger.child({
      queue: queueName,
      messageId: message.messageId,
      attempt,
      reqId: readRequestId(headers),
    });

    let outcome: Outcome;
    try {
      const delivery: Delivery = {
        body: JSON.parse(message.content) as unknown,
        messageId: message.messageId,
        headers,
        attempt,
        redelivered: message.redelivered || readPriorDeliveries(headers) > 0,
        deliveryCount: readDeliveryCount(headers),
      };
      const result: unknown = await consumer.handler(delivery);
      if (!isOutcome(result)) {
        const err = new TypeError('handler resolved without a valid outcome');
        log.error({ err }, 'message handler failed; requeueing');
        throw err;
      }
      outcome = result;
    } catch {
      // The handler has logged its failure (see RabbitBroker.handle).
      log.debug('message handler failed; requeueing');
      this.requeue(consumer.queue, message);
      return;
    }

    const decision = decideSettlement(outcome, attempt, consumer.opts.maxAttempts);
    const family = queueFamily(queueName, this.topology, this.delays);
    try {
      if (decision.action === 'release') {
        // Back at the head as it came: not a failed delivery, so not counted towards the delivery limit, and the
        // failed deliveries before it still count (RabbitMQ's copy carries them in PRIOR_DELIVERIES_HEADER).
        consumer.queue.ready.unshift(message);
        this.scheduleDispatch(consumer.queue);
      } else if (decision.action === 'delay') {
        const level = levelForAttempt(family, decision.nextAttempt);
        this.enqueue(
          level.queue,
          {
            ...message,
            headers: retryHeaders(message.headers, queueName, decision.nextAttempt, decision.reason),
            redelivered: false,
            returns: 0,
          },
          jitteredDelay(level.delayMs),
        );
        log.info({ reason: decision.reason, delayMs: level.delayMs }, 'message scheduled for retry');
      } else if (decision.action === 'dead-letter') {
        this.enqueue(family.deadLetter, {
          ...message,
          headers: deadLetterHeaders(message.headers, queueName, attempt, decision.reason),
          redelivered: false,
          returns: 0,
        });
        log.warn({ reason: decision.reason }, 'message dead-lettered');
      }
    } catch (err) {
      log.warn({ err }, 'could not route the message onwards; requeueing');
      this.requeue(consumer.queue, message);
    }
  }

  /**
   * A failed delivery goes back to the head of its queue until the delivery limit dead-letters it. Counted as
   * RabbitMQ's driver counts it: the returns, plus the failed deliveries a message published as a release's copy
   * carries (none here, where a release puts the message itself back, unless a producer copied the header).
   */
  private requeue(queue: MemoryQueue, message: StoredMessage): void {
    const returns = message.returns + 1;
    const { deliveryLimit, deadLetterTo } = queue.spec;
    if (deliveryLimit !== undefined && returns + readPriorDeliveries(message.headers) > deliveryLimit) {
      const headers = withDeath(message.headers, queue.spec.name, DELIVERY_LIMIT_REASON);
      this.logger.warn(
        { queue: queue.spec.name, messageId: message.messageId, reqId: readRequestId(message.headers) },
        'delivery limit reached; dead-lettering',
      );
      if (deadLetterTo !== undefined)
        this.moveTo(deadLetterTo, { ...message, headers, redelivered: false, returns: 0 });
      return;
    }
    queue.ready.unshift({ ...message, redelivered: true, returns });
    this.scheduleDispatch(queue);
  }

  private cancelConsumer(consumer: MemoryConsumer): Promise<void> {
    consumer.cancelling ??= this.doCancel(consumer);
    return consumer.cancelling;
  }

  private async doCancel(consumer: MemoryConsumer): Promise<void> {
    consumer.active = false;
    this.consumers.delete(consumer);
    const { queue } = consumer;
    queue.consumers = queue.consumers.filter((c) => c !== consumer);
    queue.nextConsumer = 0;
    const drained = await waitBounded(Promise.allSettled([...consumer.inflight]), this.drainTimeoutMs);
    if (!drained)
      this.logger.warn({ queue: queue.spec.name }, 'handlers still running after the drain timeout');
  }
}

/** Records a broker-side death the way RabbitMQ does, newest first, so tooling reads both drivers alike. */
function withDeath(headers: Record<string, unknown>, queue: string, reason: string): Record<string, unknown> {
  const deaths = Array.isArray(headers['x-death']) ? [...(headers['x-death'] as unknown[])] : [];
  const entry = { count: 1, reason, queue, exchange: '', 'routing-keys': [queue] };
  const copy: Record<string, unknown> = { ...headers, 'x-death': [entry, ...deaths] };
  copy['x-first-death-reason'] ??= reason;
  copy['x-first-death-queue'] ??= queue;
  copy['x-first-death-exchange'] ??= '';
  delete copy[DELIVERY_COUNT_HEADER];
  delete copy[PRIOR_DELIVERIES_HEADER];
  return copy;
}
