/**
 * The messaging contract shared by the RabbitMQ driver and the in-process driver. Domain code
 * (refund worker, outbox relay, event subscribers) depends on these types only, never on amqplib.
 */

export interface TopologyNames {
  /** Work queue for refund requests (quorum, durable, bounded redeliveries). */
  requests: string;
  /** Outcome messages for other services (quorum, durable). */
  responses: string;
  /** Where requests end up when they cannot be processed (quorum, durable). */
  deadLetter: string;
  /** Prefix of the delay queues, one per backoff level. */
  retryPrefix: string;
  /** Durable topic exchange carrying verified webhook events. */
  events: string;
}

export interface Delivery<T = unknown> {
  body: T;
  messageId: string;
  headers: Record<string, unknown>;
  /** Our own retry count, read from a header: 0 on the first attempt, +1 per 'retry' outcome. */
  attempt: number;
  /**
   * The broker delivered this message before without an ack (crash, throw, lost connection), also when it was
   * released since (RabbitMQ's copy of a released message that had failed before).
   */
  redelivered: boolean;
  /**
   * Failed deliveries so far (quorum queues' x-delivery-count): how many times the broker has handed this message
   * out without an ack, releases not counted but the failures before them carried across (PRIOR_DELIVERIES_HEADER);
   * undefined for none. A 'retry' outcome starts it afresh. Failing once more with it at the delivery limit
   * dead-letters the message (`delivery_limit`), with either driver.
   */
  deliveryCount?: number;
}

/**
 * `release`: the handler did nothing with the message (its consumer is stopping): back to its queue as it came,
 * attempt unchanged, and not counted as a failed delivery against the delivery limit; the failed deliveries before
 * it still count (Delivery.deliveryCount).
 */
export type Outcome =
  | { kind: 'ack' }
  | { kind: 'retry'; reason: string }
  | { kind: 'dead-letter'; reason: string }
  | { kind: 'release' };

export type Destination = { queue: string } | { exchange: string; routingKey: string };

export interface PublishOptions {
  messageId: string;
  headers?: Record<string, unknown>;
}

export interface ConsumeOptions {
  /** Upper bound of deliveries handled at the same time by this consumer. */
  prefetch: number;
  /** Total handler attempts ('retry' outcomes included) before a message is dead-lettered. */
  maxAttempts: number;
}

export type Handler<T> = (delivery: Delivery<T>) => Promise<Outcome>;

export interface Consumer {
  /** Stops new deliveries, then waits (bounded) for the handlers already running. */
  cancel(): Promise<void>;
  /**
   * Whether the broker delivers to this consumer now: false while it is being subscribed again (its channel
   * closed, the server cancelled it, the connection is down) and once it is cancelled.
   */
  isSubscribed(): boolean;
}

export interface Broker {
  readonly kind: 'rabbitmq' | 'memory';
  /** Begins connecting; resolves once connected or after a short wait, and keeps retrying in the background. */
  start(): Promise<void>;
  /** Whether publishing can go on now: RabbitMQ's publishing connection is up (onStateChange tells its changes). */
  isConnected(): boolean;
  onStateChange(fn: (connected: boolean) => void): void;
  /**
   * Each connection to the broker this process has and whether it is up: `publish` (isConnected()), and `consume`
   * once a consumer was asked for (RabbitMQ acks on a connection of its own, never blocked by a resource alarm).
   * Absent for the in-process driver.
   */
  connections?(): { publish: boolean; consume?: boolean };
  /** Resolves only once the broker has confirmed the message; rejects on nack, timeout, outage or unroutable queue. */
  publish(dest: Destination, body: unknown, opts: PublishOptions): Promise<void>;
  consume<T>(queue: string, handler: Handler<T>, opts: ConsumeOptions): Promise<Consumer>;
  /** Declares `queue` (quorum, with its own dead-letter queue) and binds it to a topic exchange. */
  bind(queue: string, exchange: string, pattern: string): Promise<void>;
  /** Messages ready in the queue, or null when the broker cannot tell (disconnected, unknown queue). */
  queueDepth(queue: string): Promise<number | null>;
  /**
   * How many more messages the broker should be given now; absent when it sets no bound. The in-process queue
   * keeps its work queues in memory, so past its bound the outbox relay leaves rows in the outbox, durable,
   * until the worker has taken some. RabbitMQ keeps its queues on disk and answers 0 only during a resource
   * alarm (connection.blocked), when it would not read what it is sent.
   */
  room?(): number;
  /** Stops consumers, waits (bounded) for in-flight handlers, then disconnects. */
  close(): Promise<void>;
}
