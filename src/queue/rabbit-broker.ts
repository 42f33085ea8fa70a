/**
 * The RabbitMQ driver. amqplib's built-in recovery (connect with `recovery`) owns reconnecting
 * with backoff; its `setup` hook runs on every (re)connect and is where the topology, the publish
 * channel, bindings and consumers are (re)established on the fresh connection.
 *
 * Two connections, as RabbitMQ advises: during a resource alarm (memory, disk) it stops reading every connection
 * that publishes, acks included, so a worker that acked on the connection it published on could not drain the
 * backlog that would clear the alarm. One connection publishes (the outbox relay's messages, and the retry,
 * dead-letter and release copies of the consumers' handlers) and declares the topology; the other, opened at the
 * first consume(), subscribes and acks, and never publishes. It declares the topology too (no publish), as it may be
 * up before the first one has declared anything. A process that never consumes (the API) opens only the first. Each
 * reconnects on its own.
 */
import {
  connect,
  credentials,
  type Channel,
  type ChannelModel,
  type ConsumeMessage,
  type RecoveringChannelModel,
} from 'amqplib';
import { createHash } from 'node:crypto';
import { getEventListeners } from 'node:events';
import { pino, type Logger } from 'pino';
import { BrokerUnavailableError, PublishError } from './errors.js';
import {
  bindQueue,
  closeQuietly,
  declareQueues,
  declareTopicExchange,
  openChannel,
  TopologyRefusedError,
} from './rabbit-declare.js';
import { ConfirmPublisher } from './rabbit-publisher.js';
import {
  DELIVERY_LIMIT_REASON,
  atDeliveryLimit,
  decideSettlement,
  deadLetterHeaders,
  isOutcome,
  readAttempt,
  readDeliveryCount,
  readPriorDeliveries,
  readRequestId,
  releaseHeaders,
  retryHeaders,
  validateConsumeOptions,
} from './settlement.js';
import {
  DELIVERY_COUNT_HEADER,
  baseTopologySpecs,
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

export interface RabbitBrokerOptions {
  url: string;
  topology?: Partial<TopologyNames>;
  /** Redeliveries after which a message that keeps failing is dead-lettered by the broker (default 5). */
  deliveryLimit?: number;
  /** Delay per retry level (default 1 s, 5 s, 25 s, 2 min). */
  retryDelaysMs?: number[];
  /**
   * Shown by RabbitMQ (`connection_name`), so operators can tell instances apart: the publishing connection's; the
   * consuming one's is this followed by `/consume`.
   */
  connectionName?: string;
  logger?: Logger;
  /** How long a publish waits for the broker's confirm before rejecting (default 10 s). */
  confirmTimeoutMs?: number;
  /**
   * How long start() waits for the first connection before returning anyway (default 5 s); the first consume() waits
   * as long for the consuming connection.
   */
  startTimeoutMs?: number;
  /**
   * Bound on waiting for in-flight handlers in cancel() and close() (default 20 s: the Stripe SDK's default
   * timeout, and inside the process's 25 s shutdown, which still has to drain HTTP and flush the outbox).
   */
  drainTimeoutMs?: number;
  /** Reconnect backoff (defaults 250 ms doubling up to 15 s, with jitter). */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
}

/** The publishing connection, while it is up. */
interface Live {
  model: ChannelModel;
  publisher: ConfirmPublisher;
  reopening: Promise<ConfirmPublisher> | null;
  alarm: Alarm;
  /** Queues and exchanges of ours being declared again after a publish found them missing, by name. */
  restoring: Map<string, Promise<void>>;
}

/** The consuming connection, while it is up: consumer channels and their acks, never a publish. */
interface Consuming {
  model: ChannelModel;
  /** RabbitMQ blocks only connections that publish, so never this one; kept should a broker block it all the same. */
  alarm: Alarm;
  /** Families (delay queues + DLQ) already declared on this connection. */
  families: Set<string>;
}

/**
 * The user name and password in a RabbitMQ URL, decoded as UTF-8 (guest/guest when it names none, as amqplib's
 * default). amqplib decodes them with `unescape()`, which reads each byte of a percent-encoded UTF-8 sequence as a
 * character of its own: a password outside ASCII (`pässwört`, which RABBITMQ_PASSWORD is encoded into) reached
 * RabbitMQ mangled, and the login was refused on every retry.
 */
export function credentialsOf(url: string): ReturnType<typeof credentials.plain> {
  const u = new URL(url);
  if (u.username === '' && u.password === '') return credentials.plain('guest', 'guest');
  return credentials.plain(decodeComponent(u.username), decodeComponent(u.password));
}

/** decodeURIComponent, but a `%` that starts no valid sequence is kept as written (as `unescape()` keeps it). */
function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** RabbitMQ announced connection.blocked (a resource alarm) on a connection, and not yet connection.unblocked. */
interface Alarm {
  blocked: boolean;
  /** Told once when the connection is blocked: a call waiting for an answer stops waiting (see unlessBlocked). */
  onBlocked: Set<() => void>;
}

const BLOCKED = Symbol('blocked');

/**
 * Runs `call`, one that waits for RabbitMQ's answer, unless RabbitMQ blocks the connection before it answers: it
 * reads nothing more of a blocked connection until the alarm ends (the call's frames, a heartbeat, an ack), so the
 * answer would wait for as long as the alarm lasts, and with it a /metrics scrape or a shutdown. BLOCKED then; the
 * call itself goes on in the background (its frames go out when the alarm ends, or are dropped with the connection).
 */
async function unlessBlocked<T>(
  alarm: Alarm | undefined,
  call: () => Promise<T>,
): Promise<T | typeof BLOCKED> {
  if (!alarm) return call();
  if (alarm.blocked) return BLOCKED;
  let onBlocked: (() => void) | undefined;
  const blocked = new Promise<typeof BLOCKED>((resolve) => {
    onBlocked = () => resolve(BLOCKED);
    alarm.onBlocked.add(onBlocked);
  });
  const running = call();
  try {
    return await Promise.race([running, blocked]);
  } finally {
    if (onBlocked) alarm.onBlocked.delete(onBlocked);
    running.catch(noop); // given up on while blocked: its failure (the connection closed meanwhile) is no news
  }
}

interface ConsumerRecord {
  queue: string;
  handler: Handler<unknown>;
  opts: ConsumeOptions;
  active: boolean;
  channel: Channel | null;
  tag: string | null;
  /** Bumped on every attach; callbacks of an older channel compare it and stand down. */
  epoch: number;
  retryTimer: ReturnType<typeof setTimeout> | null;
  retryCount: number;
  inflight: Set<Promise<void>>;
  cancelling: Promise<void> | null;
  /** The server cancelled the subscription (its queue was deleted): declare the queue again before attaching. */
  redeclare: boolean;
}

interface BindingRecord {
  queue: string;
  exchange: string;
  pattern: string;
}

const noop = (): void => {};

/**
 * How long close() and a consumer's cancel() wait for RabbitMQ to answer a goodbye (basic.cancel, a channel's close;
 * close(): the publish channel's and both connections' close, together) before going on without the answer. A
 * connection that went silent (a broker that hangs, a path that drops everything) answers nothing, and amqplib gives
 * up on it only when its heartbeat runs out, a minute or more: past the 25 s a stop has, 20 of them for the handlers.
 */
const GOODBYE_TIMEOUT_MS = 2_000;

const LATE = Symbol('late');
/** Messages whose failed deliveries the driver counts itself at most (see `failures`): about 1 MB. */
const MAX_COUNTED_FAILURES = 10_000;

/** `call`, waited for up to GOODBYE_TIMEOUT_MS: LATE if it has not settled by then (it goes on; its failure is no news). */
async function unlessLate<T>(call: Promise<T>): Promise<T | typeof LATE> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(() => resolve(LATE), GOODBYE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([call, late]);
  } finally {
    clearTimeout(timer);
    call.catch(noop);
  }
}

export function createRabbitBroker(opts: RabbitBrokerOptions): Broker {
  return new RabbitBroker(opts);
}

class RabbitBroker implements Broker {
  readonly kind = 'rabbitmq' as const;

  private readonly topology: TopologyNames;
  private readonly delays: number[];
  private readonly deliveryLimit: number;
  private readonly logger: Logger;
  private readonly confirmTimeoutMs: number;
  private readonly startTimeoutMs: number;
  private readonly drainTimeoutMs: number;

  private connection: RecoveringChannelModel | null = null;
  private starting: Promise<void> | null = null;
  private live: Live | null = null;
  private connected = false;
  /** The consuming connection, opened by the first consume(). */
  private consumeConnection: RecoveringChannelModel | null = null;
  private startingConsume: Promise<void> | null = null;
  private consuming: Consuming | null = null;
  /** Settlements waiting for the publishing connection to come back (see untilPublishing). */
  private readonly wakeups = new Set<() => void>();
  private closing: Promise<void> | null = null;
  private readonly stateListeners = new Set<(connected: boolean) => void>();
  private readonly consumers = new Set<ConsumerRecord>();
  private readonly bindings = new Map<string, BindingRecord>();
  /** Consumer channels that have closed: what they delivered and did not ack, RabbitMQ hands out again. */
  private readonly closedChannels = new WeakSet<Channel>();
  /**
   * Queues of ours with a delivery limit that exist with other arguments and are used as they are (the Python
   * service's classic queue): RabbitMQ enforces no delivery limit on them, so the driver does (see handle()).
   */
  private readonly unlimited = new Set<string>();
  /**
   * Failed deliveries this process saw of each message of an `unlimited` queue that keeps no x-delivery-count (a
   * classic queue), by queue and message id; forgotten once the message is settled, the oldest first past
   * MAX_COUNTED_FAILURES.
   */
  private readonly failures = new Map<string, number>();
  /**
   * Ends the socket of each connection's attempt under way (amqplib hands `signal` on to net.connect, for every
   * attempt): close() aborts the one of a connection that is not up. An attempt to a RabbitMQ that takes the TCP
   * connection and never answers otherwise waits for amqplib's own timeout (10 s), whatever close() says.
   */
  private readonly attempts = { publish: new AbortController(), consume: new AbortController() };

  constructor(private readonly opts: RabbitBrokerOptions) {
    // amqplib's recovery would otherwise retry a malformed URL forever in the background.
    if (!/^amqps?:\/\//i.test(opts.url)) throw new TypeError('url must start with amqp:// or amqps://');
    this.topology = resolveTopology(opts.topology);
    this.delays = validateRetryDelays(opts.retryDelaysMs);
    this.deliveryLimit = validateDeliveryLimit(opts.deliveryLimit);
    this.logger = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'rabbitmq' });
    this.confirmTimeoutMs = opts.confirmTimeoutMs ?? 10_000;
    this.startTimeoutMs = opts.startTimeoutMs ?? 5_000;
    this.drainTimeoutMs = opts.drainTimeoutMs ?? 20_000;
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  start(): Promise<void> {
    if (this.closing) return Promise.reject(new BrokerUnavailableError('broker is closed'));
    this.starting ??= this.doStart();
    return this.starting;
  }

  private async doStart(): Promise<void> {
    const opened = await this.open(
      this.opts.connectionName ?? 'stripe-payment-service',
      this.logger,
      (model) => this.setup(model),
      this.attempts.publish.signal,
    );
    this.connection = opened.connection;
    if (this.closing) {
      await opened.connection.close();
      return;
    }
    if (!(await this.firstConnect(opened.connection)) && !this.closing) {
      this.logger.warn(
        { broker: new URL(this.opts.url).host },
        notConnectedYet(this.opts.url, opened.lastFailure()),
      );
    }
  }

  /** Opens the consuming connection, once; waits for its first connect as start() does. */
  private startConsuming(): Promise<void> {
    this.startingConsume ??= this.doStartConsuming();
    return this.startingConsume;
  }

  private async doStartConsuming(): Promise<void> {
    const log = this.logger.child({ connection: 'consume' });
    // Its own name, so that operators (and rabbitmqctl list_connections) can tell the two apart.
    const name = `${this.opts.connectionName ?? 'stripe-payment-service'}/consume`;
    const opened = await this.open(
      name,
      log,
      (model) => this.setupConsuming(model, log),
      this.attempts.consume.signal,
    );
    this.consumeConnection = opened.connection;
    if (this.closing) {
      await opened.connection.close();
      return;
    }
    if (!(await this.firstConnect(opened.connection)) && !this.closing) {
      log.warn(
        {
          broker: new URL(this.opts.url).host,
          reason: reasonOf(opened.lastFailure() ?? 'not connected yet'),
        },
        'the RabbitMQ connection to consume on is not up yet; consumers subscribe once it is, retrying in the background',
      );
    }
  }

  /**
   * A recovering connection with its listeners; `setup` runs on each (re)connect. `signal` destroys the socket of
   * every attempt, the one under way included (see `attempts`).
   */
  private async open(
    connectionName: string,
    logger: Logger,
    setup: (model: ChannelModel) => Promise<void>,
    signal: AbortSignal,
  ): Promise<{ connection: RecoveringChannelModel; lastFailure: () => unknown }> {
    const connection = await connect(this.opts.url, {
      // Handed on to net.connect (tls.connect) with the rest, and so the socket's own; spread, as amqplib's types
      // (tls.ConnectionOptions) do not name it.
      ...{ signal },
      credentials: credentialsOf(this.opts.url),
      clientProperties: { connection_name: connectionName },
      // Bounds a TCP connect or handshake to an unresponsive host, so recovery moves on to a retry.
      timeout: 10_000,
      // Without it Nagle's algorithm holds small frames back: ~40 ms per confirm or get round trip.
      noDelay: true,
      recovery: {
        waitForConnect: false,
        initialDelay: this.opts.reconnect?.initialDelayMs ?? 250,
        maxDelay: this.opts.reconnect?.maxDelayMs ?? 15_000,
        maxRetries: Infinity,
        setup,
      },
    });
    // The recovering connection re-emits connection errors; without a listener they would throw.
    connection.on('error', (err: Error) => logger.warn({ err }, 'RabbitMQ connection error'));
    connection.on('handler-error', (err: Error, event: string) =>
      logger.error({ err, event }, 'a RabbitMQ event listener threw'),
    );
    // The reason only (refused login, refused connection, timeout): a stack every retry would be noise. Under
    // `reason`, not `err`, which the logger's error serializer would render as "[object Object]".
    let lastFailure: unknown = null;
    connection.on('connect-failed', (err: unknown) => {
      // An attempt that close() ended (aborted, or given up on since): no news.
      if (this.closing) return;
      lastFailure = err;
      if (err instanceof TopologyRefusedError) {
        // Connected, and the retries will not help until someone changes the broker (or the other service goes).
        logger.error({ reason: err.message }, 'RabbitMQ refused to declare a queue or exchange of ours');
      } else {
        logger.warn({ reason: reasonOf(err) }, 'RabbitMQ connection attempt failed');
      }
    });
    connection.on('reconnect-scheduled', (info: { attempt: number; delay: number }) => {
      // Between attempts no socket of this connection is open: the listener each attempt's socket added to
      // `signal` goes. Node 20 never removes it (nor the socket it holds), so a long outage gathered one per retry.
      for (const listener of getEventListeners(signal, 'abort'))
        signal.removeEventListener('abort', listener as (event: Event) => void);
      logger.info({ attempt: info.attempt, delayMs: info.delay }, 'RabbitMQ reconnect scheduled');
    });
    connection.on('reconnect-failed', (err: Error) => logger.error({ err }, 'RabbitMQ recovery gave up'));
    return { connection, lastFailure: () => lastFailure };
  }

  /** Whether the connection's first connect finished within startTimeoutMs. */
  private async firstConnect(connection: RecoveringChannelModel): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.startTimeoutMs);
    });
    const result = await Promise.race([
      connection.waitForConnect().then(
        () => 'connected' as const,
        () => 'failed' as const,
      ),
      waited,
    ]);
    clearTimeout(timer);
    return result === 'connected';
  }

  /** Runs on every successful (re)connect of the publishing connection, before amqplib reports it as up. */
  private async setup(model: ChannelModel): Promise<void> {
    let lost = false;
    const alarm: Alarm = { blocked: false, onBlocked: new Set() };
    // Once setup is done, amqplib's recovering connection takes the model's errors and emits them again, logged by
    // its listener (connect()): logged here as well, each connection error was two lines. Until then it is not
    // listening, and an error of the model only this listener hears.
    let handedOver = false;
    model.on('error', (err: Error) => {
      if (!handedOver) this.logger.warn({ err }, 'RabbitMQ connection error');
    });
    model.on('close', () => {
      lost = true;
      this.onConnectionLost(model);
    });
    model.on('blocked', (reason: string) => {
      alarm.blocked = true;
      for (const notify of [...alarm.onBlocked]) notify();
      this.logger.warn({ reason }, 'RabbitMQ blocked publishing (resource alarm); publishes wait');
    });
    model.on('unblocked', () => {
      alarm.blocked = false;
      this.logger.info('RabbitMQ unblocked publishing');
    });
    if (this.closing) throw new Error('broker is closing');

    await this.declareQueues(model, baseTopologySpecs(this.topology, this.delays, this.deliveryLimit));
    await declareTopicExchange(model, this.topology.events, this.logger);
    const publisher = await ConfirmPublisher.open(model, this.logger);
    if (lost) throw new Error('connection lost during setup');

    const live: Live = { model, publisher, reopening: null, alarm, restoring: new Map() };
    this.live = live;

    for (const binding of this.bindings.values()) {
      try {
        await this.declareBinding(model, binding);
      } catch (err) {
        this.logger.error({ err, ...binding }, 'could not re-declare a binding');
      }
    }
    // A connection that died during setup must not be handed to amqplib as healthy: it would never see the close
    // and never reconnect.
    if (lost) throw new Error('connection lost during setup');
    this.logger.info('RabbitMQ connected and topology declared');
    this.setConnected(true);
    handedOver = true;
  }

  /** Runs on every successful (re)connect of the consuming connection: subscribes every consumer on it again. */
  private async setupConsuming(model: ChannelModel, log: Logger): Promise<void> {
    let lost = false;
    const alarm: Alarm = { blocked: false, onBlocked: new Set() };
    let handedOver = false; // as in setup()
    model.on('error', (err: Error) => {
      if (!handedOver) log.warn({ err }, 'RabbitMQ connection error');
    });
    model.on('close', () => {
      lost = true;
      this.onConsumingLost(model, log);
    });
    model.on('blocked', (reason: string) => {
      // RabbitMQ blocks only connections that publish: this one never does.
      alarm.blocked = true;
      for (const notify of [...alarm.onBlocked]) notify();
      log.warn({ reason }, 'RabbitMQ blocked the connection consumers are on (resource alarm); acks wait');
    });
    model.on('unblocked', () => {
      alarm.blocked = false;
      log.info('RabbitMQ unblocked the connection consumers are on');
    });
    if (this.closing) throw new Error('broker is closing');

    // The topology as setup() declares it, here too: this connection may come up before the publishing one has
    // declared anything (a process started before RabbitMQ, a RabbitMQ that lost its queues in a restart), and a
    // consumer's attach would then find no queue. Declaring is no publish (goes on during a resource alarm) and
    // changes nothing that exists.
    await this.declareForConsumers(model, log);
    if (lost) throw new Error('connection lost during setup');

    const consuming: Consuming = { model, alarm, families: new Set() };
    this.consuming = consuming;
    for (const record of this.consumers) {
      if (!record.active) continue;
      try {
        await this.attach(record, consuming);
      } catch (err) {
        this.logger.error({ err, queue: record.queue }, 'could not re-establish a consumer; will retry');
        if (this.isOurs(record.queue) && isNotFound(err)) record.redeclare = true;
        this.scheduleReattach(record);
      }
    }
    // As in setup(): a connection that died while consumers were attaching must not be handed over as healthy.
    if (lost) throw new Error('connection lost during setup');
    log.info('RabbitMQ connected to consume');
    handedOver = true;
  }

  /**
   * On the consuming connection: the work queues, the events exchange and the bindings, as setup() declares them. A
   * refusal (a user who may not configure them) is logged, not thrown: consumers still subscribe to queues that
   * exist, and the publishing connection reports it too. A lost connection is thrown.
   */
  private async declareForConsumers(model: ChannelModel, log: Logger): Promise<void> {
    try {
      await this.declareQueues(model, baseTopologySpecs(this.topology, this.delays, this.deliveryLimit));
      await declareTopicExchange(model, this.topology.events, this.logger);
    } catch (err) {
      if (!(err instanceof TopologyRefusedError)) throw err;
      log.error({ reason: err.message }, 'RabbitMQ refused to declare a queue or exchange of ours');
    }
    for (const binding of this.bindings.values()) {
      try {
        await this.declareBinding(model, binding);
      } catch (err) {
        this.logger.error({ err, ...binding }, 'could not re-declare a binding');
      }
    }
  }

  private onConnectionLost(model: ChannelModel): void {
    if (this.live?.model !== model) return;
    this.live = null;
    // Lost while close() drains the consumers: not to be tried again, the stop has begun.
    if (this.closing) this.stopConnecting('publish');
    else this.logger.warn('RabbitMQ connection lost; reconnecting in the background');
    this.setConnected(false);
  }

  private onConsumingLost(model: ChannelModel, log: Logger): void {
    if (this.consuming?.model !== model) return;
    this.consuming = null;
    for (const record of this.consumers) {
      record.channel = null;
      record.tag = null;
    }
    // As in onConnectionLost.
    if (this.closing) this.stopConnecting('consume');
    else log.warn('RabbitMQ connection lost; reconnecting in the background');
  }

  /** Wakes the settlements waiting for the publishing connection (see untilPublishing). */
  private wake(): void {
    const waiting = [...this.wakeups];
    this.wakeups.clear();
    for (const wakeup of waiting) wakeup();
  }

  private setConnected(connected: boolean): void {
    if (connected) this.wake();
    if (this.connected === connected) return;
    this.connected = connected;
    for (const listener of this.stateListeners) {
      try {
        listener(connected);
      } catch (err) {
        this.logger.error({ err }, 'a broker state listener threw');
      }
    }
  }

  /** The publishing connection (what the outbox relay and the sweeps need); see connections() for both. */
  isConnected(): boolean {
    return this.connected;
  }

  connections(): { publish: boolean; consume?: boolean } {
    if (!this.consumeConnection) return { publish: this.connected };
    return { publish: this.connected, consume: this.consuming !== null };
  }

  onStateChange(fn: (connected: boolean) => void): void {
    this.stateListeners.add(fn);
  }

  /**
   * No bound, except during a resource alarm: RabbitMQ then stops reading a connection that publishes, so a
   * publish would only sit in this process's write buffer until its confirm times out, and the outbox relay
   * would add a copy per try for as long as the alarm lasts. Meanwhile the rows wait in the outbox.
   */
  room(): number {
    return this.live?.alarm.blocked ? 0 : Number.MAX_SAFE_INTEGER;
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    // A connection that is not up is stopped first, whatever the rest waits for (consumers draining): its retries
    // would go on meanwhile, and its attempt under way hold a socket to a RabbitMQ that does not answer.
    if (!this.live) this.stopConnecting('publish');
    if (!this.consuming) this.stopConnecting('consume');
    // A settlement waiting for the publishing connection to come back gives its message back instead.
    this.wake();
    // Consumers first, while the publish channel still works: in-flight handlers may need it to
    // route their retries and dead letters before they ack.
    await Promise.all([...this.consumers].map((record) => this.cancelConsumer(record)));
    const live = this.live;
    this.live = null;
    this.consuming = null;
    const goodbyes = async (): Promise<void> => {
      // Not during a resource alarm (see unlessBlocked): amqplib closes a blocked connection at once, channels and
      // all.
      if (live) await unlessBlocked(live.alarm, () => live.publisher.close());
      await Promise.all([this.connection?.close().catch(noop), this.consumeConnection?.close().catch(noop)]);
    };
    if ((await unlessLate(goodbyes())) === LATE) {
      this.logger.warn('RabbitMQ did not answer the close in time; the connections are dropped');
    }
    // Each connection stopped (its close above may not have been reached), then every socket still open ends: an
    // attempt under way (a connection lost, and tried again, after the checks at the top), a connection whose close
    // RabbitMQ did not answer. After the closes, so that no connection that is up loses its socket before it is
    // closed.
    this.stopConnecting('publish');
    this.stopConnecting('consume');
    this.setConnected(false);
  }

  /**
   * Stops a connection that is not up: no further attempt (amqplib's recovery stopped, a retry waiting cancelled),
   * and the attempt under way ended, its socket destroyed. A connection not opened yet (start() or the first
   * consume() still creating it) is closed where it is created, and its attempts are aborted already.
   */
  private stopConnecting(which: 'publish' | 'consume'): void {
    const connection = which === 'publish' ? this.connection : this.consumeConnection;
    connection?.close().catch(noop);
    this.attempts[which].abort();
  }

  // ---- publishing ------------------------------------------------------------------------------

  async publish(dest: Destination, body: unknown, opts: PublishOptions): Promise<void> {
    if (typeof opts.messageId !== 'string' || opts.messageId === '')
      throw new TypeError('messageId is required');
    const json = JSON.stringify(body);
    if (json === undefined) throw new TypeError('body must be JSON-serialisable');
    // Refused at once rather than buffered (see room()): the row stays in the outbox. A consumer's retry or
    // dead-letter copy (publishRaw) still goes out, so that its message is not redelivered at once in a loop.
    if (this.live?.alarm.blocked)
      throw new BrokerUnavailableError('RabbitMQ is blocking publishes (resource alarm)');
    const [exchange, routingKey] = 'queue' in dest ? ['', dest.queue] : [dest.exchange, dest.routingKey];
    try {
      await this.publishRaw(exchange, routingKey, Buffer.from(json), {
        messageId: opts.messageId,
        headers: opts.headers ?? {},
        timestamp: Math.floor(Date.now() / 1000),
      });
    } catch (err) {
      await this.restoreAfter(dest, err);
      throw err;
    }
  }

  /**
   * A publish to a queue or exchange of ours that no longer exists (deleted under a live connection): declare
   * it again, so that the outbox's next try goes through. Setup only declares the topology on a new connection,
   * and no consumer of ours watches the responses queue or the events exchange; without this their rows would
   * wait in the outbox until the process happened to reconnect.
   */
  private async restoreAfter(dest: Destination, err: unknown): Promise<void> {
    const live = this.live;
    if (!live || !(err instanceof PublishError)) return;
    let key: string;
    let restore: () => Promise<void>;
    if ('queue' in dest && err.code === 'unroutable') {
      key = `queue:${dest.queue}`;
      restore = () => this.redeclare(live.model, dest.queue);
    } else if (
      'exchange' in dest &&
      dest.exchange === this.topology.events &&
      err.code === 'channel-closed'
    ) {
      key = `exchange:${dest.exchange}`;
      restore = async () => {
        await declareTopicExchange(live.model, dest.exchange, this.logger);
        for (const binding of this.bindings.values())
          if (binding.exchange === dest.exchange) await this.declareBinding(live.model, binding);
      };
    } else return;
    let running = live.restoring.get(key);
    if (!running) {
      running = restore()
        .catch((e: unknown) => this.logger.warn({ err: e, what: key }, 'could not declare it again'))
        .finally(() => live.restoring.delete(key));
      live.restoring.set(key, running);
    }
    await running;
  }

  private async publishRaw(
    exchange: string,
    routingKey: string,
    content: Buffer,
    props: {
      messageId: string;
      headers: Record<string, unknown>;
      timestamp?: number;
      expiration?: string;
      correlationId?: string;
    },
    /** Waits through a resource alarm for the confirm instead of timing out (see ConfirmPublisher.publish). */
    waitOutAlarm = false,
  ): Promise<void> {
    const alarm = this.live?.alarm;
    const publisher = await this.currentPublisher();
    await publisher.publish(
      exchange,
      routingKey,
      content,
      { ...props, persistent: true, contentType: 'application/json' },
      this.confirmTimeoutMs,
      waitOutAlarm && alarm ? () => alarm.blocked : undefined,
    );
  }

  /** The live confirm channel, reopened on the same connection after a channel-level error. */
  private async currentPublisher(): Promise<ConfirmPublisher> {
    const live = this.live;
    if (!live) throw new BrokerUnavailableError();
    if (live.publisher.isOpen()) return live.publisher;
    live.reopening ??= ConfirmPublisher.open(live.model, this.logger)
      .then((publisher) => {
        live.publisher = publisher;
        return publisher;
      })
      .finally(() => {
        live.reopening = null;
      });
    try {
      return await live.reopening;
    } catch (err) {
      throw new BrokerUnavailableError('could not reopen the publish channel', { cause: err });
    }
  }

  // ---- topology helpers ------------------------------------------------------------------------

  async bind(queue: string, exchange: string, pattern: string): Promise<void> {
    const binding: BindingRecord = { queue, exchange, pattern };
    const key = JSON.stringify([queue, exchange, pattern]);
    const live = this.live;
    if (!live) {
      // Declared by setup() once a connection exists.
      this.bindings.set(key, binding);
      return;
    }
    await this.declareBinding(live.model, binding);
    this.bindings.set(key, binding);
  }

  /** declareQueues, noting which queues with a delivery limit RabbitMQ does not enforce it on (`unlimited`). */
  private async declareQueues(model: ChannelModel, specs: readonly QueueSpec[]): Promise<void> {
    const asTheyAre = new Set(await declareQueues(model, specs, this.logger));
    for (const spec of specs) {
      if (spec.deliveryLimit === undefined) continue;
      if (asTheyAre.has(spec.name)) this.unlimited.add(spec.name);
      else this.unlimited.delete(spec.name);
    }
  }

  private async declareBinding(model: ChannelModel, binding: BindingRecord): Promise<void> {
    const family = queueFamily(binding.queue, this.topology, this.delays);
    await this.declareQueues(model, [
      workQueueSpec(binding.queue, family.deadLetter, this.deliveryLimit),
      { name: family.deadLetter },
    ]);
    await bindQueue(model, binding, this.logger);
  }

  /**
   * Declares a consumed queue's delay and dead-letter queues, on the consuming connection: declaring is no publish,
   * and goes on during a resource alarm there, where the publishing connection would not be read.
   */
  private async declareFamily(consuming: Consuming, queue: string): Promise<void> {
    if (consuming.families.has(queue)) return;
    await declareQueues(
      consuming.model,
      familySpecs(queueFamily(queue, this.topology, this.delays)),
      this.logger,
    );
    consuming.families.add(queue);
  }

  async queueDepth(queue: string): Promise<number | null> {
    // Asked on the consuming connection where there is one: during a resource alarm RabbitMQ still reads it.
    const on =
      this.consuming && !this.consuming.alarm.blocked ? this.consuming : (this.live ?? this.consuming);
    if (!on) return null;
    try {
      // On a blocked connection RabbitMQ cannot tell: it reads neither the channel's opening nor the question.
      const reply = await unlessBlocked(on.alarm, async () => {
        const channel = await openChannel(on.model, this.logger, 'queue-depth');
        try {
          return await channel.checkQueue(queue);
        } finally {
          await closeQuietly(channel);
        }
      });
      return reply === BLOCKED ? null : reply.messageCount;
    } catch (err) {
      this.logger.debug({ err, queue }, 'queue depth unavailable');
      return null;
    }
  }

  // ---- consuming -------------------------------------------------------------------------------

  async consume<T>(queue: string, handler: Handler<T>, opts: ConsumeOptions): Promise<Consumer> {
    validateConsumeOptions(opts);
    if (this.closing) throw new BrokerUnavailableError('broker is closed');
    // Before the record is registered: the first connect's setup finds nothing to subscribe, and the attach below is
    // the only one (a later reconnect subscribes it again).
    await this.startConsuming();
    if (this.closing) throw new BrokerUnavailableError('broker is closed');
    const record: ConsumerRecord = {
      queue,
      handler: handler as Handler<unknown>,
      opts: { prefetch: opts.prefetch, maxAttempts: opts.maxAttempts },
      active: true,
      channel: null,
      tag: null,
      epoch: 0,
      retryTimer: null,
      retryCount: 0,
      inflight: new Set(),
      cancelling: null,
      redeclare: false,
    };
    // Registered first so that a reconnect during the attach below re-establishes it too.
    this.consumers.add(record);
    const consumer: Consumer = {
      cancel: () => this.cancelConsumer(record),
      isSubscribed: () => record.active && record.tag !== null && this.consuming !== null,
    };
    const consuming = this.consuming;
    if (!consuming) return consumer; // attached by setupConsuming() once the connection exists
    try {
      // Attaching now surfaces mistakes (unknown queue) to the caller instead of the logs.
      await this.attach(record, consuming);
    } catch (err) {
      // The connection dropped; setupConsuming() retries.
      if (this.consuming !== consuming && !this.closing) return consumer;
      if (!this.closing && record.active && this.isOurs(queue) && isNotFound(err)) {
        // A queue of ours that is not there (deleted; bound by bind() while the publishing connection was down):
        // no mistake of the caller's. The retry declares it again (redeclare() says so, once) and subscribes.
        record.redeclare = true;
        this.scheduleReattach(record);
        return consumer;
      }
      record.active = false;
      this.consumers.delete(record);
      throw err;
    }
    return consumer;
  }

  private async attach(record: ConsumerRecord, consuming: Consuming): Promise<void> {
    const epoch = ++record.epoch;
    if (record.retryTimer) {
      clearTimeout(record.retryTimer);
      record.retryTimer = null;
    }
    if (record.redeclare) {
      await this.redeclare(consuming.model, record.queue);
      record.redeclare = false;
    }
    const channel = await consuming.model.createChannel();
    channel.on('error', (err: Error) =>
      this.logger.warn({ err, queue: record.queue }, 'RabbitMQ consumer channel closed with an error'),
    );
    channel.on('close', () => {
      this.closedChannels.add(channel);
      this.wake(); // a settlement of its waiting for the publishing connection leaves it to the redelivery
      this.onConsumerChannelClosed(record, epoch);
    });
    try {
      // Fails (404) before any retry or dead-letter queue is created for a queue that does not exist.
      await channel.checkQueue(record.queue);
      await this.declareFamily(consuming, record.queue);
      await channel.prefetch(record.opts.prefetch);
      if (!record.active || record.epoch !== epoch) {
        await closeQuietly(channel);
        return;
      }
      record.channel = channel;
      const { consumerTag } = await channel.consume(
        record.queue,
        (msg) => this.onMessage(record, channel, epoch, msg),
        {
          noAck: false,
        },
      );
      if (!record.active || record.epoch !== epoch) {
        // A concurrent attach (reconnect racing consume()) won; keep only one subscription.
        await closeQuietly(channel);
        return;
      }
      record.tag = consumerTag;
      record.retryCount = 0;
    } catch (err) {
      if (record.channel === channel) record.channel = null;
      await closeQuietly(channel);
      throw err;
    }
  }

  /**
   * Declares again a queue of ours that was deleted under its consumer: the work queues of the topology
   * and every queue this broker bound (with its bindings). Setup only declares them on a new connection,
   * so without this a consumer would wait for a reconnect that may never come, and every publish to the
   * queue would come back unroutable. A queue this broker does not know stays the caller's business.
   */
  private async redeclare(model: ChannelModel, queue: string): Promise<void> {
    const own = baseTopologySpecs(this.topology, this.delays, this.deliveryLimit).filter(
      (spec) => spec.name === queue,
    );
    const bound = [...this.bindings.values()].filter((binding) => binding.queue === queue);
    if (own.length === 0 && bound.length === 0) return;
    this.logger.warn({ queue }, 'a queue of ours is missing (deleted?); declaring it again');
    if (own.length > 0) await this.declareQueues(model, own);
    for (const binding of bound) await this.declareBinding(model, binding);
    // Its delay and dead-letter queues may have gone with it: declared again by the attach.
    this.consuming?.families.delete(queue);
  }

  /** A work queue of the topology, or a queue this broker bound: one redeclare() declares again. */
  private isOurs(queue: string): boolean {
    if (baseTopologySpecs(this.topology, this.delays, this.deliveryLimit).some((spec) => spec.name === queue))
      return true;
    for (const binding of this.bindings.values()) if (binding.queue === queue) return true;
    return false;
  }

  private onConsumerChannelClosed(record: ConsumerRecord, epoch: number): void {
    if (record.epoch !== epoch) return;
    record.channel = null;
    record.tag = null;
    if (record.active && this.consuming && !this.closing) this.scheduleReattach(record);
  }

  /** Re-subscribes after a channel-level failure; after a lost connection, setupConsuming() does it instead. */
  private scheduleReattach(record: ConsumerRecord): void {
    if (record.retryTimer || !record.active) return;
    const delay = Math.min(500 * 2 ** record.retryCount, 30_000);
    record.retryCount += 1;
    const model = this.consuming?.model;
    record.retryTimer = setTimeout(() => {
      record.retryTimer = null;
      const consuming = this.consuming;
      // A channel that closed with its connection is re-established by setupConsuming() on the next one.
      if (!record.active || !consuming || consuming.model !== model || this.closing || record.channel) return;
      this.attach(record, consuming).catch((err: unknown) => {
        this.logger.warn({ err, queue: record.queue }, 'could not re-establish a consumer; will retry');
        this.scheduleReattach(record);
      });
    }, delay);
  }

  private onMessage(
    record: ConsumerRecord,
    channel: Channel,
    epoch: number,
    msg: ConsumeMessage | null,
  ): void {
    if (msg === null) {
      // The server cancelled us (queue deleted, for instance): subscribe again on a fresh channel
      // and let the running handlers finish on the old one first.
      this.logger.warn({ queue: record.queue }, 'RabbitMQ cancelled the consumer; re-subscribing');
      if (record.epoch === epoch) {
        record.epoch += 1;
        record.channel = null;
        record.tag = null;
        record.redeclare = true;
        this.scheduleReattach(record);
      }
      void Promise.allSettled([...record.inflight]).then(() => closeQuietly(channel));
      return;
    }
    const task = this.handle(record, channel, msg)
      .catch((err: unknown) =>
        this.logger.error({ err, queue: record.queue }, 'unexpected failure settling a message'),
      )
      .finally(() => record.inflight.delete(task));
    record.inflight.add(task);
  }

  private async handle(record: ConsumerRecord, channel: Channel, msg: ConsumeMessage): Promise<void> {
    const headers: Record<string, unknown> = { ...(msg.properties.headers ?? {}) };
    const attempt = readAttempt(headers);
    const messageId = nameMessage(msg);
    const log = this.logger.child({ queue: record.queue, messageId, attempt, reqId: readRequestId(headers) });
    // The copy of a released message that had failed before (PRIOR_DELIVERIES_HEADER): RabbitMQ counts its failed
    // deliveries from 0 again, so the delivery limit of its queue is enforced here on the whole count, at the
    // delivery where RabbitMQ would have dead-lettered the message had it not been released. A message never released
    // is left to RabbitMQ, which records the death in x-death.
    const released = readPriorDeliveries(headers) > 0;
    // A queue used as it is (the old service's classic queue) enforces no delivery limit, and a classic queue counts
    // no deliveries either: the driver counts the failures it sees and stops the message where a quorum queue would.
    const unlimited = this.unlimited.has(record.queue);
    const failureKey = `${record.queue}\u0000${messageId}`;
    const ownCount = unlimited && headers[DELIVERY_COUNT_HEADER] === undefined;
    const seen = ownCount ? (this.failures.get(failureKey) ?? 0) : 0;
    if (seen > 0) headers[DELIVERY_COUNT_HEADER] = seen;
    const deliveryLimit = released || unlimited ? this.deliveryLimitOf(record.queue) : undefined;
    if (deliveryLimit !== undefined && (readDeliveryCount(headers) ?? 0) > deliveryLimit) {
      // It failed once more without a handler saying so (a crash, a lost connection), which RabbitMQ counted: past
      // the limit, as RabbitMQ would, it is not handed out again.
      this.failures.delete(failureKey);
      await this.settle(record, channel, msg, headers, attempt, {
        kind: 'dead-letter',
        reason: DELIVERY_LIMIT_REASON,
      });
      return;
    }

    let body: unknown;
    try {
      body = JSON.parse(msg.content.toString('utf8'));
    } catch {
      // Parsing will never succeed on a later attempt, so retrying would only burn the budget.
      await this.settle(record, channel, msg, headers, attempt, {
        kind: 'dead-letter',
        reason: 'body is not valid JSON',
      });
      return;
    }

    const delivery: Delivery = {
      body,
      messageId,
      headers,
      attempt,
      // The copy of a released message is new to RabbitMQ, but not to the handler when it had failed before: as
      // the in-process driver, which puts the message itself back, says.
      redelivered: msg.fields.redelivered || released,
      deliveryCount: readDeliveryCount(headers),
    };
    let outcome: Outcome;
    try {
      const result: unknown = await record.handler(delivery);
      if (!isOutcome(result)) {
        const err = new TypeError('handler resolved without a valid outcome');
        log.error({ err }, 'message handler failed; requeueing');
        throw err;
      }
      outcome = result;
    } catch {
      // Requeue: a crash may be transient, and the queue's delivery limit stops a poison message. The handler has
      // logged its failure with what it was doing (the refund worker's request_id): logged here again, every failed
      // delivery would be two lines with one error.
      if (atDeliveryLimit(headers, deliveryLimit)) {
        // The failure RabbitMQ would have dead-lettered the message for, but for the release (see above). The handler
        // was told it was the last delivery (Delivery.deliveryCount), as for any message at the limit.
        this.failures.delete(failureKey);
        await this.settle(record, channel, msg, headers, attempt, {
          kind: 'dead-letter',
          reason: DELIVERY_LIMIT_REASON,
        });
        return;
      }
      log.debug('message handler failed; requeueing');
      if (ownCount) this.countFailure(failureKey, seen);
      this.nack(channel, msg, log);
      return;
    }
    this.failures.delete(failureKey);
    await this.settle(record, channel, msg, headers, attempt, outcome);
  }

  /** Notes one more failed delivery of a message of an `unlimited` queue (`before`: its failures until now). */
  private countFailure(key: string, before: number): void {
    this.failures.delete(key);
    this.failures.set(key, before + 1);
    if (this.failures.size > MAX_COUNTED_FAILURES) {
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
  }

  /** The delivery limit a queue of ours is declared with (x-delivery-limit); undefined for any other queue. */
  private deliveryLimitOf(queue: string): number | undefined {
    const own = baseTopologySpecs(this.topology, this.delays, this.deliveryLimit).find(
      (spec) => spec.name === queue,
    );
    if (own) return own.deliveryLimit;
    for (const binding of this.bindings.values()) if (binding.queue === queue) return this.deliveryLimit;
    return undefined;
  }

  private async settle(
    record: ConsumerRecord,
    channel: Channel,
    msg: ConsumeMessage,
    headers: Record<string, unknown>,
    attempt: number,
    outcome: Outcome,
  ): Promise<void> {
    const decision = decideSettlement(outcome, attempt, record.opts.maxAttempts);
    const messageId = nameMessage(msg);
    const log = this.logger.child({ queue: record.queue, messageId, attempt, reqId: readRequestId(headers) });
    if (decision.action !== 'ack' && this.closedChannels.has(channel)) {
      // Its channel closed (the connection was lost) while the handler ran: RabbitMQ has taken the message back and
      // hands it out again, so a copy routed now (over a new connection) would be a second message, handled twice.
      // The handler runs again on the redelivery and routes it then.
      log.info(
        { action: decision.action },
        'its channel closed before it was settled; left to the redelivery',
      );
      return;
    }
    if (decision.action !== 'ack' && !this.live) {
      // The copy goes out on the publishing connection, down while the consuming one is up. A nack now would have
      // RabbitMQ hand the message out again at once, each time a failed delivery against the delivery limit; the
      // message waits unacked instead (its handler's slot of the prefetch), until the publishing connection is back.
      // A release does not wait: its nack is what it means. Nor does a message whose consumer or broker is stopping.
      const outcome = decision.action === 'release' ? 'stopped' : await this.untilPublishing(record, channel);
      if (outcome === 'left') {
        log.info(
          { action: decision.action },
          'its channel closed before it was settled; left to the redelivery',
        );
        return;
      }
      if (outcome === 'stopped') {
        log.warn(
          { action: decision.action },
          'the RabbitMQ connection to publish on is down; message given back to its queue',
        );
        this.nack(channel, msg, log);
        return;
      }
    }
    const family = queueFamily(record.queue, this.topology, this.delays);
    const props = {
      messageId,
      timestamp: typeof msg.properties.timestamp === 'number' ? msg.properties.timestamp : undefined,
      correlationId:
        typeof msg.properties.correlationId === 'string' ? msg.properties.correlationId : undefined,
    };
    // Each copy waits through a resource alarm that starts while it is on its way (publishRaw's waitOutAlarm): timed
    // out, the message would be given back as well, and RabbitMQ would take both once the alarm ends.
    try {
      if (decision.action === 'release') {
        // A copy at the tail of the queue, then the ack: a nack would be a failed delivery to RabbitMQ (before 4.3
        // every return counts against the delivery limit), and a message released at each of a few restarts would
        // be dead-lettered without ever being handled. The copy carries the failed deliveries the message had had
        // (releaseHeaders), which RabbitMQ would otherwise forget. During a resource alarm the copy would only wait
        // for its confirm; the nack below gives the message back at once instead (counted as a failed delivery).
        if (this.live?.alarm.blocked) throw new BrokerUnavailableError('RabbitMQ is blocking publishes');
        await this.publishRaw(
          '',
          record.queue,
          msg.content,
          { ...props, headers: releaseHeaders(headers) },
          true,
        );
        log.debug('message released back to its queue');
      } else if (decision.action === 'delay') {
        const level = levelForAttempt(family, decision.nextAttempt);
        await this.publishRaw(
          '',
          level.queue,
          msg.content,
          {
            ...props,
            headers: retryHeaders(headers, record.queue, decision.nextAttempt, decision.reason),
            expiration: String(jitteredDelay(level.delayMs)),
          },
          true,
        );
        log.info({ reason: decision.reason, delayMs: level.delayMs }, 'message scheduled for retry');
      } else if (decision.action === 'dead-letter') {
        await this.publishRaw(
          '',
          family.deadLetter,
          msg.content,
          { ...props, headers: deadLetterHeaders(headers, record.queue, attempt, decision.reason) },
          true,
        );
        log.warn({ reason: decision.reason }, 'message dead-lettered');
      }
    } catch (err) {
      // The copy is not safely stored elsewhere, so the original must stay in the queue.
      log.warn({ err }, 'could not route the message onwards; requeueing');
      const consuming = this.consuming;
      if (consuming && err instanceof PublishError && err.code === 'unroutable') {
        // A delay or dead-letter queue deleted under us: declared again, so the redelivery can go on.
        consuming.families.delete(record.queue);
        await this.declareFamily(consuming, record.queue).catch((e: unknown) =>
          log.warn({ err: e }, 'could not declare the retry and dead-letter queues again'),
        );
      }
      this.nack(channel, msg, log);
      return;
    }
    try {
      channel.ack(msg);
    } catch (err) {
      // The channel died with the connection; the broker will redeliver (redelivered=true).
      log.debug({ err }, 'ack failed; the message will be redelivered');
    }
  }

  /**
   * Waits for the publishing connection: 'publishing' once it is up, 'left' once the message's channel closed
   * (RabbitMQ hands it out again), 'stopped' once its consumer is cancelled or the broker closes.
   */
  private async untilPublishing(
    record: ConsumerRecord,
    channel: Channel,
  ): Promise<'publishing' | 'left' | 'stopped'> {
    for (;;) {
      if (this.closedChannels.has(channel)) return 'left';
      if (this.closing || !record.active) return 'stopped';
      if (this.live) return 'publishing';
      await new Promise<void>((resolve) => this.wakeups.add(resolve));
    }
  }

  private nack(channel: Channel, msg: ConsumeMessage, log: Logger): void {
    try {
      channel.nack(msg, false, true);
    } catch (err) {
      log.debug({ err }, 'nack failed; the message will be redelivered');
    }
  }

  private cancelConsumer(record: ConsumerRecord): Promise<void> {
    record.cancelling ??= this.doCancel(record);
    return record.cancelling;
  }

  private async doCancel(record: ConsumerRecord): Promise<void> {
    record.active = false;
    this.consumers.delete(record);
    this.wake(); // its settlements waiting for the publishing connection give their messages back

    if (record.retryTimer) {
      clearTimeout(record.retryTimer);
      record.retryTimer = null;
    }
    const { channel, tag } = record;
    // The consuming connection's alarm (a channel of a lost connection answers at once).
    const alarm = this.consuming?.alarm;
    let unanswered = false;
    if (channel && tag) {
      try {
        // During a resource alarm the broker would read the basic.cancel only once it ends, and a silent connection
        // never: deliveries may go on meanwhile (up to the prefetch, since it reads no ack either), handled as any
        // other.
        unanswered = (await unlessLate(unlessBlocked(alarm, () => channel.cancel(tag)))) === LATE;
        if (unanswered) {
          this.logger.warn({ queue: record.queue }, 'RabbitMQ did not answer basic.cancel in time; going on');
        }
      } catch (err) {
        this.logger.debug({ err, queue: record.queue }, 'basic.cancel failed');
      }
    }
    const drained = await waitBounded(Promise.allSettled([...record.inflight]), this.drainTimeoutMs);
    if (!drained) {
      this.logger.warn(
        { queue: record.queue, inflight: record.inflight.size },
        'handlers still running after the drain timeout; their messages will be redelivered',
      );
    }
    record.channel = null;
    record.tag = null;
    const closed = unlessBlocked(alarm, () => closeQuietly(channel));
    // Not waited for again on a connection that left the cancel unanswered: the channel goes with the connection.
    if (unanswered) closed.catch(noop);
    else await unlessLate(closed);
  }
}

/**
 * Why start() goes on without RabbitMQ, and which settings to check: a mistyped host or port otherwise looks like
 * an outage, and a broker that refuses the login or the virtual host is reachable, so "elsewhere" would mislead.
 */
function notConnectedYet(url: string, failure: unknown): string {
  const { host, pathname } = new URL(url);
  if (failure instanceof TopologyRefusedError) {
    // Before the login test below: a user who may not configure a queue is refused with ACCESS_REFUSED too.
    return `RabbitMQ at ${host} accepted the connection but refused to declare ${failure.what} (${failure.reason}); publishing fails until it does, retrying in the background`;
  }
  const lastFailure = failure === null ? '' : reasonOf(failure);
  if (/ACCESS.REFUSED/.test(lastFailure)) {
    return `RabbitMQ at ${host} refused the login; publishing fails until it accepts it, retrying in the background (check RABBITMQ_USER and RABBITMQ_PASSWORD, or the user and password in RABBITMQ_URL)`;
  }
  // amqplib's words when the broker closes the connection instead of opening the virtual host.
  if (/Expected ConnectionOpenOk; got <ConnectionClose/.test(lastFailure)) {
    let vhost = pathname.slice(1) || '/';
    try {
      vhost = decodeURIComponent(vhost);
    } catch {
      // Shown as written.
    }
    return `RabbitMQ at ${host} refused to open virtual host ${JSON.stringify(vhost)} (it does not exist, or the user may not use it); publishing fails until it opens it, retrying in the background (check RABBITMQ_VHOST, or the path of RABBITMQ_URL)`;
  }
  return `RabbitMQ is not reachable yet at ${host}; publishing fails until it is, retrying in the background (if it is elsewhere, set RABBITMQ_URL, or RABBITMQ_HOST and RABBITMQ_PORT)`;
}

/**
 * The message's id: its `message_id`, or for one another producer published without one (pika's and most clients'
 * default) `sha256:<first 32 hex digits of the body's SHA-256>`, set on the message so that its retry, release and
 * dead-letter copies carry it. Copied with an empty id, every id-less copy to one delay queue would share one key of
 * the publisher's (ConfirmPublisher's `inFlight`), each held until the one before was confirmed, and the copies in
 * the dead-letter queue could not be told apart. A body sent twice is named the same both times: the same request.
 */
function nameMessage(msg: ConsumeMessage): string {
  const given: unknown = msg.properties.messageId;
  if (typeof given === 'string' && given !== '') return given;
  const name = `sha256:${createHash('sha256').update(msg.content).digest('hex').slice(0, 32)}`;
  msg.properties.messageId = name;
  return name;
}

/** RabbitMQ's 404 NOT_FOUND (amqplib's error for a channel the server closed with it). */
function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 404;
}

function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
