/**
 * Composition root: builds every dependency once from a Config (createDeps) and starts the roles asked
 * for. main.ts and the integration tests both go through here, never through module state.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Express } from 'express';
import type { Logger } from 'pino';
import { provisionKeys } from './auth/api-keys.js';
import type { Config } from './config/index.js';
import { buildOpsApp } from './http/ops-app.js';
import { paymentHandlers, paymentReplays } from './http/handlers/payments.js';
import { refundHandlers } from './http/handlers/refunds.js';
import { opsHandlers } from './http/handlers/ops.js';
import { webhookHandlers } from './http/handlers/webhooks.js';
import type { Handlers } from './http/operations.js';
import { isLoopbackAddress } from './http/loopback-host.js';
import {
  afterResponsesInFlight,
  endResponseWithProblem,
  endSocket,
  endSocketWithProblem,
  lastResponse,
  logRawAnswer,
  rawRequestId,
  responseInFlight,
} from './http/raw-answer.js';
import { refuseConnect } from './http/request-target.js';
import { loopbackHostCheck } from './http/security.js';
import { loadSpec } from './http/spec.js';
import { createReadiness, withWorkerSubscription, type Readiness } from './ops/health.js';
import { createMetrics, type Metrics } from './ops/metrics.js';
import { createPaymentsService, type PaymentsService } from './payments/service.js';
import {
  createMemoryBroker,
  createRabbitBroker,
  createRateLimiter,
  DEFAULT_DELIVERY_LIMIT,
  prefixedTopology,
  queueFamily,
  resolveTopology,
  type Broker,
  type Consumer,
  readRequestId,
  type TopologyNames,
} from './queue/index.js';
import { createOutboxRelay, type OutboxRelay } from './queue/outbox-relay.js';
import { waitBounded } from './queue/wait-bounded.js';
import {
  attemptWindowMs,
  createRefundService,
  outcomeBodyOf,
  firstRequestMessageIds,
  refundRequestMessage,
  type RefundService,
} from './refunds/service.js';
import { startRefundWorker } from './refunds/worker.js';
import type { Sandbox } from './sandbox/index.js';
import { createStore, failureLevel, redactDatabaseUrl, type Store } from './store/index.js';
import { createStripeClient, type StripeClient } from './stripe/client.js';
import { createWebhookService, type WebhookService } from './webhooks/service.js';

export interface ServiceOptions {
  /** PostgreSQL schema to use (tests isolate with it). */
  storeSchema?: string;
  /** Queue and exchange names (tests isolate with a unique prefix). */
  topology?: Partial<TopologyNames>;
  /** Extra routes (demo pages, health) mounted on the API. */
  extraRoutes?: (app: Express, deps: Deps) => void;
  /** Delay between sweeps for stuck work, in ms. */
  sweepIntervalMs?: number;
  /** Delay between housekeeping runs (expired keys, old outbox rows and events, e-mail addresses), in ms. */
  housekeepingIntervalMs?: number;
  /**
   * How long after close() begins it waits for webhook events still being applied (default 15 s, inside the
   * 25 s a stop may take). An event not applied by then stays stored, and a process's retry sweep applies it.
   */
  webhookDrainMs?: number;
  /**
   * How long after close() begins it waits for request handlers still at work once their connections are closed
   * (default 15 s): a request the timeout answered goes on with its Stripe call, and what that call did must be
   * written before the store closes.
   */
  handlerDrainMs?: number;
  /**
   * Aborting it stops a start still under way (main.ts: a SIGTERM or SIGINT during start-up): startService closes
   * what it had opened and rejects with {@link StartStopped}. What was still being opened when the signal came (a
   * store waiting for its database, a server binding its port) is closed as soon as it is open.
   */
  signal?: AbortSignal;
}

/** startService's rejection when its `signal` stopped the start: everything it had opened is closed. */
export class StartStopped extends Error {
  override readonly name = 'StartStopped';
  constructor() {
    super('the start was stopped before the service was ready');
  }
}

/**
 * `work`, unless `signal` aborts first: then rejects with StartStopped at once, and what `work` opens later is handed
 * to `closeLate` (a start stopped while its store waits for the database closes the store when it comes).
 */
function unlessStopped<T>(
  work: Promise<T>,
  signal: AbortSignal | undefined,
  closeLate?: (value: T) => Promise<unknown>,
): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    void work.then((v) => closeLate?.(v)).catch(() => undefined);
    return Promise.reject(new StartStopped());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      reject(new StartStopped());
      void work.then((v) => closeLate?.(v)).catch(() => undefined);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}

/** Throws StartStopped once `signal` has aborted (between the steps of a start). */
function throwIfStopped(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new StartStopped();
}

export interface Deps {
  readonly config: Config;
  readonly logger: Logger;
  readonly store: Store;
  readonly stripe: StripeClient;
  /** The in-process Stripe stand-in, when running embedded. */
  readonly sandbox: Sandbox | null;
  /** The secret the embedded sandbox signs webhooks with: the first of STRIPE_WEBHOOK_SECRET, or a random one. */
  readonly webhookSecret: string;
  readonly broker: Broker;
  /** Settles once broker.start() has: connected, or (after its start timeout) retrying in the background. */
  readonly brokerStarted: Promise<void>;
  readonly topology: TopologyNames;
  readonly relay: OutboxRelay;
  readonly payments: PaymentsService;
  readonly refunds: RefundService;
  readonly webhooks: WebhookService;
  readonly metrics: Metrics;
  readonly readiness: () => Promise<Readiness>;
  close(): Promise<void>;
}

/** Payment intents, charges, refunds, sessions and payment methods the embedded sandbox keeps, each. */
const EMBEDDED_SANDBOX_MAX_OBJECTS = 10_000;

/** How long /readyz waits for each dependency at most (less when REQUEST_TIMEOUT_MS is short). */
const READINESS_CHECK_TIMEOUT_MS = 2000;
/**
 * Readiness checks a process stays ready without. One that serves the API (api, all) keeps taking refunds while
 * RabbitMQ is away (they wait in the outbox), so it stays in its load balancer; a worker process cannot work.
 */
/** Checks a process of each role stays ready without (see ReadinessDeps.optional). */
const OPTIONAL_CHECKS_FOR: Record<Config['role'], readonly string[]> = {
  api: ['broker', 'stripe'],
  all: ['broker', 'stripe'],
  worker: [],
};

/**
 * How long after a stop begins an embedded process (its Stripe the in-process sandbox) lets its worker empty the
 * in-process queue before it stops consuming (see close()).
 */
const EMBEDDED_QUEUE_DRAIN_MS = 10_000;

const EMBEDDED_NOTICE =
  'EMBEDDED MODE: Stripe is an in-process sandbox (no real money moves); set STRIPE_SECRET_KEY for real Stripe';

export async function createDeps(config: Config, logger: Logger, opts: ServiceOptions = {}): Promise<Deps> {
  const closers: (() => Promise<void>)[] = [];
  const signal = opts.signal;
  if (config.stripe.mode === 'sandbox') {
    logger.warn(
      {
        database: redactDatabaseUrl(config.database.url),
        rabbitmq: Boolean(config.rabbitmq.url),
        apiAuth: config.auth.enabled,
      },
      `${EMBEDDED_NOTICE}. Not for production.`,
    );
  }
  try {
    // The longest wait of a start: connecting (up to DATABASE_TIMEOUT_MS), migrations, index builds. Stopped during
    // it, the process exits with the store still opening: a migration is one transaction, which PostgreSQL rolls
    // back with the session, and an index build left INVALID is dropped and built again by the next start.
    const store = await unlessStopped(
      createStore({
        url: config.database.url,
        poolSize: config.database.poolSize,
        queryTimeoutMs: config.database.timeoutMs,
        connectTimeoutMs: config.database.timeoutMs,
        logger,
        ...(opts.storeSchema ? { schema: opts.storeSchema } : {}),
      }),
      signal,
      (late) => late.close(),
    );
    closers.push(() => store.close());

    let sandbox: Sandbox | null = null;
    let secretKey = config.stripe.secretKey;
    let apiBase = config.stripe.apiBase;
    const webhookSecrets =
      config.stripe.webhookSecrets.length > 0
        ? config.stripe.webhookSecrets
        : [`whsec_${randomBytes(24).toString('hex')}`];
    const webhookSecret = webhookSecrets[0]!;
    if (config.stripe.mode === 'remote' && config.stripe.webhookSecrets.length === 0) {
      logger.warn('STRIPE_WEBHOOK_SECRET is not set: every webhook from Stripe will be refused until it is');
    }
    if (config.stripe.mode === 'sandbox') {
      secretKey = `sk_test_embedded${randomBytes(16).toString('hex')}`;
      // Loaded only here: a deployment against real Stripe never pays for the sandbox's code.
      const { startSandbox } = await import('./sandbox/index.js');
      throwIfStopped(signal);
      sandbox = await unlessStopped(
        startSandbox({
          port: config.sandbox.port,
          secretKey,
          logger: logger.child({ component: 'sandbox' }),
          // It lives in this process: keep its memory bounded however long the service runs.
          maxObjects: EMBEDDED_SANDBOX_MAX_OBJECTS,
        }),
        signal,
        (late) => late.close(),
      );
      closers.push(() => sandbox!.close());
      apiBase = new URL(sandbox.url);
      logger.info({ sandbox: sandbox.url }, 'embedded Stripe sandbox listening');
    }
    const metrics = createMetrics();
    const stripe = createStripeClient(
      {
        secretKey: secretKey!,
        apiBase,
        timeoutMs: config.stripe.timeoutMs,
        maxNetworkRetries: config.stripe.maxNetworkRetries,
        idempotencyPrefix: config.stripe.idempotencyPrefix,
      },
      logger,
      (e) => metrics.observeStripe(e),
    );

    throwIfStopped(signal);
    const topology = resolveTopology({ ...prefixedTopology(config.rabbitmq.queuePrefix), ...opts.topology });
    const broker = config.rabbitmq.url
      ? createRabbitBroker({
          url: config.rabbitmq.url,
          topology,
          retryDelaysMs: [...config.worker.retryDelaysMs],
          connectionName: `payments-${config.role}-${process.pid}`,
          logger,
        })
      : createMemoryBroker({ topology, retryDelaysMs: [...config.worker.retryDelaysMs], logger });
    if (broker.kind === 'memory') {
      logger.warn(
        'EMBEDDED MODE: refunds are queued in process (set RABBITMQ_URL or RABBITMQ_HOST for RabbitMQ)',
      );
    }
    // Connecting (and declaring the topology) takes a few round trips: they overlap with the rest of the
    // start, and an API process listens before they finish. startService waits for this before it
    // resolves and before a worker consumes.
    const brokerStarted = broker.start();
    brokerStarted.catch(() => undefined); // awaited by startService; rejects only when closed meanwhile
    closers.push(() => broker.close());

    const provisioned = await unlessStopped(
      provisionKeys(store.apiKeys, config.auth.provisionedKeys),
      signal,
    );
    if (provisioned.added > 0)
      logger.info({ count: provisioned.added }, 'API keys provisioned from API_KEYS');
    for (const k of provisioned.changed) {
      logger.warn(
        { keyId: k.id, owner: k.owner, kind: k.kind, scopes: k.scopes },
        'API key changed to what API_KEYS now says',
      );
    }
    for (const k of provisioned.revoked) {
      logger.warn({ keyId: k.id, owner: k.owner }, 'API key revoked: API_KEYS no longer lists it');
    }
    for (const k of provisioned.reinstated) {
      logger.warn(
        { keyId: k.id, owner: k.owner, kind: k.kind, scopes: k.scopes },
        'API key active again: API_KEYS lists it again',
      );
    }
    for (const id of provisioned.stillRevoked) {
      logger.warn(
        { keyId: id },
        'API_KEYS lists an API key revoked with npm run keys -- revoke: it stays revoked (provision a new one)',
      );
    }
    if (config.auth.enabled) {
      const active = (await unlessStopped(store.apiKeys.list(), signal)).filter((k) => k.revokedAt === null);
      if (active.length === 0) {
        logger.warn(
          'API keys are required but no API key exists: every request is refused with 401 until one is provisioned (API_KEYS, or npm run keys -- create)',
        );
      }
      // CORS_ORIGINS is then every owner's list of where its publishable keys' checkouts may send customers back to.
      const browserOwners = [...new Set(active.filter((k) => k.kind === 'publishable').map((k) => k.owner))];
      if (
        browserOwners.length > 1 &&
        config.auth.ownerOrigins === null &&
        config.auth.corsOrigins.length > 0
      ) {
        logger.warn(
          { owners: browserOwners.sort() },
          "several owners hold publishable keys and OWNER_ORIGINS is unset: each owner's checkouts may send customers back to any origin in CORS_ORIGINS, another owner's too; set OWNER_ORIGINS to give each owner its own",
        );
      }
    }
    if (!config.auth.enabled) {
      logger.warn(
        { host: config.host },
        'API AUTHENTICATION IS OFF: anyone who can reach this port can use the API (set API_AUTH=on); without HOST it listens on 127.0.0.1 only',
      );
      // Provisioning keys says the operator means them to be needed; off, they are stored and never asked for.
      if (config.auth.provisionedKeys.length > 0) {
        logger.warn(
          'API_KEYS is set but authentication is off, so no request needs a key: set API_AUTH=on to require them',
        );
      }
    }
    metrics.attach({ store, broker, topology });
    // Each check gives up well within the request timeout, so /readyz always answers its own 503 naming the
    // part that is slow, never the timeout's problem+json, which says nothing of what failed.
    const readiness = createReadiness({
      store,
      broker,
      stripe,
      timeoutMs: Math.min(READINESS_CHECK_TIMEOUT_MS, Math.floor(config.http.requestTimeoutMs / 2)),
      optional: OPTIONAL_CHECKS_FOR[config.role],
      logger,
    });
    const relay = createOutboxRelay({
      store,
      broker,
      logger,
      onUnpublishable: () => metrics.observeOutboxUnpublishable(),
      bodyOf: (row) => (row.destination === topology.responses ? outcomeBodyOf(store, row) : row.payload),
    });
    const payments = createPaymentsService({
      store,
      stripe,
      logger,
      ownersMatter: config.auth.enabled,
      unownedOwner: config.auth.unownedPaymentsOwner,
    });
    const refunds = createRefundService({
      store,
      stripe,
      payments,
      logger,
      topology: { requests: topology.requests, responses: topology.responses },
      onFinal: (refund) => metrics.observeRefundFinal(refund.status),
      outbox: relay,
      attemptWindowMs: attemptWindowMs(config.stripe.timeoutMs, config.stripe.maxNetworkRetries),
    });
    const webhooks = createWebhookService({
      store,
      stripe,
      payments,
      refunds,
      logger,
      secrets: webhookSecrets,
      eventsExchange: topology.events,
      // Webhooks write outbox rows (stripe.events, refund outcomes); publish them without waiting for a poll.
      outboxWritten: () => relay.notify(),
      // The key's mode (the sandbox's events are test mode, as its keys are): an event of the other mode, verified
      // by a secret of the other mode's endpoint listed by mistake, is stored but changes nothing.
      livemode: /^(sk|rk)_live_/.test(secretKey!),
    });
    throwIfStopped(signal);
    logger.info(
      {
        database: redactDatabaseUrl(config.database.url),
        broker: broker.kind,
        stripe: sandbox ? 'embedded sandbox' : (apiBase?.origin ?? 'api.stripe.com'),
      },
      'dependencies ready',
    );
    return {
      config,
      logger,
      store,
      stripe,
      sandbox,
      webhookSecret,
      broker,
      brokerStarted,
      topology,
      relay,
      payments,
      refunds,
      webhooks,
      metrics,
      readiness,
      async close() {
        for (const close of closers.reverse())
          await close().catch((err) => logger.error({ err }, 'close failed'));
      },
    };
  } catch (err) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    throw err;
  }
}

export function createHandlers(deps: Deps, opts: { readiness?: () => Promise<Readiness> } = {}): Handlers {
  const handlers = {
    ...paymentHandlers(deps.payments, { shopOrigins: deps.config.auth.corsOrigins }),
    ...refundHandlers(deps.refunds),
    ...webhookHandlers(deps.webhooks, deps.metrics),
    ...opsHandlers({
      readiness: opts.readiness ?? deps.readiness,
      metrics: deps.metrics,
      metricsPublic: deps.config.auth.metricsPublic,
    }),
  } satisfies Handlers;
  // Outbox rows are written by request handlers; wake the relay as soon as they are committed. (An async
  // refund's row is handed to the relay by the refund service itself, see RefundServiceDeps.outbox.)
  const wrap = <H extends (...a: never[]) => Promise<unknown>>(h: H): H =>
    (async (...args: Parameters<H>) => {
      try {
        return await h(...args);
      } finally {
        deps.relay.notify();
      }
    }) as H;
  return {
    ...handlers,
    createRefund: wrap(handlers.createRefund),
  };
}

export interface RunningService {
  readonly url: string;
  readonly port: number;
  readonly deps: Deps;
  close(): Promise<void>;
}

/** What Node itself would answer for each client error (its default clientError handling), as problem+json. */
const CLIENT_ERROR_ANSWERS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'The request headers are too large.'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'The chunk extensions are too large.'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'The request did not arrive in time.'],
};

/** Connections whose answers in flight go out before they close (answerMalformedRequest). */
const closingAfterAnswers = new WeakSet<Duplex>();

/**
 * Node rejects malformed HTTP (bad header bytes, oversized headers) and requests that do not arrive in time
 * before Express; answer them as problem+json too, with an X-Request-Id and the security headers (raw-answer.ts).
 * The id is a new one: the request's headers were not read, so the client's cannot be known; but when Node had
 * read them and the app took the request (a body whose chunks are malformed), the id the app gave it, which its
 * log lines carry; nothing is written once its response has started (the connection is closed), so a second
 * answer never corrupts the first.
 *
 * HTTP/1.1 pipelining: the first answer on a connection is its first request's (RFC 9112, 9.3.2). When requests
 * read whole before the bad bytes are still being answered, no raw answer is written (it would be read as theirs,
 * with their id): their answers go out, the last one saying `Connection: close`, and the connection closes, since
 * the parser is in error and nothing more can be read; the bad bytes get no answer and no log line. Only a request
 * whose body is incomplete (the malformed chunk is in it) is answered the raw problem, with its id, once the
 * answers before it have gone out.
 */
function answerMalformedRequest(err: NodeJS.ErrnoException, socket: Duplex, logger?: Logger): void {
  // Node reports the parser's error again for every further chunk: the first report was answered or is waited on.
  if (closingAfterAnswers.has(socket)) {
    if (!socket.writable) socket.destroy();
    return;
  }
  const [status, detail] = CLIENT_ERROR_ANSWERS[err.code ?? ''] ?? [400, 'The HTTP request is malformed.'];
  const answer = (res?: ServerResponse): void => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const requestId = rawRequestId(res?.getHeader('x-request-id'));
    const rawPacket = (err as { rawPacket?: unknown }).rawPacket;
    const head = res
      ? res.req.method === 'HEAD'
      : Buffer.isBuffer(rawPacket) && rawPacket.subarray(0, 5).toString('latin1') === 'HEAD ';
    endSocketWithProblem(socket, { status, detail, requestId }, { head });
    logRawAnswer(logger, { requestId, status, ...(err.code ? { code: err.code } : {}) });
  };
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  if (!responseInFlight(socket)) {
    answer();
    return;
  }
  closingAfterAnswers.add(socket);
  // The last answer to go out says the connection closes (one already under way cannot say so; it closes all the same).
  const last = lastResponse(socket);
  if (last?.req.complete && !last.headersSent) last.shouldKeepAlive = false;
  afterResponsesInFlight(
    socket,
    (res) => {
      if (res.req.complete) return true;
      // The malformed bytes are in this request's body: the raw problem is its answer, unless it has one started.
      if (res.headersSent) socket.destroy();
      else answer(res);
      return false;
    },
    () => endSocket(socket),
  );
}

/**
 * An `Expect` other than 100-continue: 417, as Node answers it by itself, but as problem+json, with the request's
 * X-Request-Id (its headers were read) and the security headers.
 */
function refuseExpectation(req: IncomingMessage, res: ServerResponse, logger?: Logger): void {
  const requestId = rawRequestId(req.headers['x-request-id']);
  endResponseWithProblem(res, {
    status: 417,
    detail: 'Only "Expect: 100-continue" is supported.',
    requestId,
  });
  logRawAnswer(logger, { requestId, status: 417, ...(req.method ? { method: req.method } : {}) });
}

/** Counts work under way (request handlers), and says when there is none. */
function workTracker(): { begin(): () => void; idle(): Promise<void> } {
  let working = 0;
  const waiting: (() => void)[] = [];
  return {
    begin() {
      working++;
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        if (--working === 0) for (const resolve of waiting.splice(0)) resolve();
      };
    },
    idle: () => (working === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiting.push(resolve))),
  };
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * Puts refunds that may have lost their message (embedded queue after a crash, a message dead-lettered
 * by the delivery limit while the ledger could not be told) back in the queue. Each re-queued row is
 * touched, so the next sweep leaves it alone until it has been stale for `olderThanMs` again.
 *
 * Every worker process sweeps, with nothing else between them: a refund is re-queued only by the sweep whose
 * touch (RefundsRepo.touchIfStale, in the transaction that adds the message) finds it still stale, so it gets one
 * message a round, not one per worker. Ages are judged, and touches written, by the database's clock
 * (Store.clockOffsetMs; this machine's on SQLite): a worker whose clock ran ahead re-queued every refund in flight.
 *
 * Once `stopping` answers true (the service is stopping) it re-queues no more: the rows left are the next sweep's, and
 * the store it would write them to is about to close.
 */
export async function requeueStuck(
  deps: Deps,
  olderThanMs: number,
  stopping: () => boolean = () => false,
): Promise<number> {
  // While RabbitMQ is unreachable the earlier messages are still waiting in the outbox; more copies of
  // them would only pile up.
  if (!deps.broker.isConnected()) return 0;
  const offsetMs = await deps.store.clockOffsetMs();
  const cutoff = Date.now() + offsetMs - olderThanMs;
  const pageSize = 500;
  let n = 0;
  // Re-queued by this sweep: a wall-clock step back can leave a touched row older than the cutoff, and it
  // must not be re-queued again (page after page, for as long as the step).
  const done = new Set<string>();
  for (;;) {
    const page = await deps.store.refunds.listByStatus(['queued', 'processing'], pageSize);
    const stale = page.filter(
      (r) => !r.stripeRefundId && Date.parse(r.updatedAt) < cutoff && !done.has(r.requestId),
    );
    // The copy carries the id of the HTTP request that asked for the refund, so the worker's lines about the
    // refund still name it: kept with the refund (migration 0011), else (a refund an earlier version accepted)
    // taken from its first message, which the outbox keeps for a week.
    const lacking = stale.filter((r) => !r.httpRequestId);
    const first =
      lacking.length > 0
        ? await deps.store.outbox.headersOf(lacking.flatMap((r) => firstRequestMessageIds(r.requestId)))
        : new Map<string, Record<string, unknown>>();
    for (const r of stale) {
      if (stopping()) break;
      const reqId =
        r.httpRequestId ??
        firstRequestMessageIds(r.requestId)
          .map((id) => readRequestId(first.get(id) ?? {}))
          .find((id) => id !== undefined);
      const requeued = await deps.store.transaction(async (tx) => {
        // Another process's sweep re-queued it first, or it moved since the page was read: nothing to add.
        if (
          !(await tx.refunds.touchIfStale(r.requestId, new Date(cutoff), new Date(Date.now() + offsetMs)))
        ) {
          return false;
        }
        await tx.outbox.add(
          refundRequestMessage(deps.topology.requests, r.requestId, `sweep-${Date.now()}-${n}`, reqId),
        );
        return true;
      });
      done.add(r.requestId);
      if (requeued) n++;
    }
    // Oldest first, and touched rows move to the back: a page with nothing stale means we are done.
    if (stale.length === 0 || page.length < pageSize || stopping()) break;
  }
  if (n > 0) deps.logger.warn({ count: n }, 're-queued refunds that had no live message');
  return n;
}

export async function startService(
  config: Config,
  logger: Logger,
  opts: ServiceOptions = {},
): Promise<RunningService> {
  const signal = opts.signal;
  const deps = await createDeps(config, logger, opts);
  const runApi = config.role !== 'worker';
  const runWorker = config.role !== 'api';
  const timers: NodeJS.Timeout[] = [];
  let consumer: Consumer | null = null;
  let server: Server | null = null;
  // Once the service is stopping, every response closes its connection (Connection: close): otherwise a client
  // that keeps its connection busy holds server.close() open, and the process serves it until the shutdown
  // timer kills it with the outbox unflushed. A response already under way when the stop begins keeps its
  // connection; the client's next request on it is answered with Connection: close. Housekeeping and the sweeps
  // begin no more work once it is set.
  let stopping = false;
  /** The housekeeping run under way, awaited before the store closes. */
  let housekeepingRun: Promise<void> = Promise.resolve();
  let relayStarted = false;
  const work = workTracker();
  /** Each open connection, with the requests on it the app has taken and not yet finished answering. */
  const requestsOn = new Map<Duplex, Set<IncomingMessage>>();
  /**
   * Once server.close() is called Node no longer enforces requestTimeout or headersTimeout, so a connection that has
   * sent part of a request would hold the close for ever. Closes the connections with no request the app has taken
   * (part of a head, or nothing since their last answer) and, with `partialBodies`, those whose every request still
   * lacks part of its body: none of them has a handler at work. Answers how many it closed.
   */
  const closeUntaken = (partialBodies: boolean): number => {
    let n = 0;
    for (const [socket, requests] of requestsOn) {
      if ([...requests].some((req) => req.complete || !partialBodies)) continue;
      socket.destroy();
      n++;
    }
    return n;
  };
  try {
    const handlers = createHandlers(
      deps,
      runWorker
        ? {
            readiness: withWorkerSubscription(
              deps.readiness,
              () => consumer?.isSubscribed() ?? false,
              OPTIONAL_CHECKS_FOR[config.role],
            ),
          }
        : {},
    );
    const onResponse = (info: { operationId: string | undefined; status: number; seconds: number }) =>
      deps.metrics.observeHttp(info);
    // Only without API keys: with keys a page cannot call the service whatever name it uses, and a reverse proxy on
    // the same machine (HOST=127.0.0.1) passes the public name in Host.
    const hostCheck = loopbackHostCheck(config.host, config.allowedHosts);
    const hostCheckMiddleware = config.auth.enabled ? null : hostCheck.middleware;
    // Only API processes load the contract validator and Swagger UI.
    const buildApp = runApi ? (await import('./http/app.js')).buildApp : null;
    const app = buildApp
      ? buildApp({
          config,
          logger,
          spec: loadSpec(),
          handlers,
          replays: paymentReplays(deps.payments),
          store: deps.store,
          onResponse,
          onWork: () => work.begin(),
          ...(hostCheckMiddleware ? { hostCheck: hostCheckMiddleware } : {}),
          ...(opts.extraRoutes ? { extraRoutes: (a: Express) => opts.extraRoutes!(a, deps) } : {}),
        })
      : buildOpsApp({
          logger,
          handlers,
          ...(config.auth.enabled
            ? { apiKeys: deps.store.apiKeys, authFailuresPerMinute: config.auth.authFailuresPerMinute }
            : {}),
          onResponse,
          ...(hostCheckMiddleware ? { hostCheck: hostCheckMiddleware } : {}),
          trustProxy: config.http.trustProxy,
        });
    // Host is required of HTTP/1.1 all the same: the app answers its absence as problem+json (requireHost).
    server = createServer({ requireHostHeader: false }, (req, res) => {
      if (stopping) res.shouldKeepAlive = false;
      const requests = requestsOn.get(req.socket);
      requests?.add(req);
      res.once('close', () => requests?.delete(req));
      app(req, res);
    });
    server.on('connection', (socket: Duplex) => {
      requestsOn.set(socket, new Set());
      socket.once('close', () => requestsOn.delete(socket));
    });
    server.requestTimeout = config.http.requestTimeoutMs;
    // Idle connections cost memory and descriptors too, and MAX_CONCURRENT_REQUESTS only counts requests: past
    // this many open connections, Node closes each new one as it arrives (said at most once a minute).
    server.maxConnections = config.http.maxConnections;
    let lastDropLog = 0;
    server.on('drop', () => {
      if (Date.now() - lastDropLog < 60_000) return;
      lastDropLog = Date.now();
      logger.warn(
        { maxConnections: config.http.maxConnections },
        'connection refused: MAX_CONNECTIONS connections are open',
      );
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
      answerMalformedRequest(err, socket, logger),
    );
    server.on('checkExpectation', (req, res) => refuseExpectation(req, res, logger));
    server.on('connect', (req, socket) => refuseConnect(req, socket, logger));
    throwIfStopped(signal);
    const listening = server;
    const address = await unlessStopped(
      listen(listening, config.port, config.host),
      signal,
      () => new Promise<void>((resolve) => listening.close(() => resolve())),
    );
    hostCheck.listeningOn(address.address);
    // ALLOWED_HOSTS only adds names to the loopback check: read as a list of the only names answered (as some
    // frameworks' setting of that name is), it would leave a deployment open that its operator believes closed.
    if (config.allowedHosts.length > 0 && !(hostCheckMiddleware && isLoopbackAddress(address.address))) {
      logger.warn(
        { listening: address.address, apiKeys: config.auth.enabled },
        'ALLOWED_HOSTS has no effect: every Host is answered with API keys on or off loopback; it only adds names a service on loopback without API keys answers',
      );
    }
    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
    // An IPv6 address is bracketed in a URL: HOST=::1 made http://::1:5000, which the sandbox refused to send
    // webhooks to, and the start failed.
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
    if (deps.sandbox) deps.sandbox.addWebhookEndpoint({ url: `${url}/webhook`, secret: deps.webhookSecret });
    // Requests are already answered (an accepted refund waits in the outbox until the broker is up).
    await unlessStopped(deps.brokerStarted, signal);

    deps.relay.start();
    relayStarted = true;
    const sweepMs = opts.sweepIntervalMs ?? 5_000;
    // Housekeeping: idempotency keys expire after 24 h; sent outbox rows are kept a week for inspection;
    // applied webhook events 30 days (Stripe retries an event for 3 days; a later copy is applied again, safely).
    // And e-mail addresses a process of a version before migration 0006 wrote into the ledger beside this one:
    // it writes them on a checkout's events, which Stripe retries for 3 days, so a week of rows is read again.
    // One purge after the other: they all run on the store's background pool (BACKGROUND_POOL_SIZE connections),
    // which the outbox relay needs too, so housekeeping holds at most one of its connections at a time. Each runs
    // even when one before it failed; the first failure is logged.
    const housekeeping = () => {
      const steps = [
        () => deps.store.idempotency.purgeExpired(),
        () => deps.store.outbox.purgeSent(new Date(Date.now() - 7 * 86_400_000)),
        () => deps.store.inbox.purgeProcessed(new Date(Date.now() - 30 * 86_400_000)),
        () => deps.store.payments.forgetCustomerEmails(new Date(Date.now() - 7 * 86_400_000)),
      ];
      housekeepingRun = (async () => {
        let failure: { err: unknown } | undefined;
        for (const step of steps) {
          // A stop waits for this run before closing the store: the purges left are the next start's to do, or a
          // database that stopped answering would hold the stop for each one's timeout in turn, past its budget.
          if (stopping) break;
          try {
            await step();
          } catch (err) {
            failure ??= { err };
          }
        }
        if (failure) logger[failureLevel(failure.err)](failure, 'housekeeping failed');
      })();
    };
    // A sweep still at work when a stop begins finishes the step it is in; what fails after that is the store closing
    // under it, not an outage: said at debug level only. (A line at error level sent operators looking for one.)
    const sweepFailed = (what: string) => (err: unknown) => {
      if (stopping) logger.debug({ err }, `${what} cut short by the shutdown`);
      else logger[failureLevel(err)]({ err }, `${what} failed`);
    };
    timers.push(
      // Webhooks arrive at API processes; whichever process stored an event retries it if processing failed.
      setInterval(() => {
        deps.webhooks.retryPending().catch(sweepFailed('webhook retry sweep'));
      }, sweepMs),
      setInterval(housekeeping, opts.housekeepingIntervalMs ?? 3_600_000),
    );
    // Also once at start: a rolling update starts processes of this version while earlier ones still run.
    housekeeping();
    if (runWorker) {
      if (deps.broker.kind === 'memory') await unlessStopped(requeueStuck(deps, 0), signal);
      throwIfStopped(signal);
      consumer = await unlessStopped(
        startRefundWorker({
          broker: deps.broker,
          refunds: deps.refunds,
          logger,
          queue: deps.topology.requests,
          prefetch: config.worker.prefetch,
          maxAttempts: config.worker.maxAttempts,
          deliveryLimit: DEFAULT_DELIVERY_LIMIT,
          limiter: createRateLimiter(config.worker.stripeMaxRps),
          storePing: () => deps.store.ping(),
        }),
        signal,
        (late) => late.cancel(),
      );
      timers.push(
        setInterval(() => {
          requeueStuck(deps, 10 * 60_000, () => stopping)
            .then((n) => n > 0 && deps.relay.notify())
            .catch(sweepFailed('stuck refund sweep'));
        }, 12 * sweepMs),
      );
    }
    for (const t of timers) t.unref();
    throwIfStopped(signal);
    logger.info({ url, role: config.role, api: runApi, worker: runWorker }, 'service started');

    /** Waits until no refund request waits in the outbox or the in-process queue (its retry delays included). */
    const emptyInProcessQueue = async (until: number): Promise<boolean> => {
      const family = queueFamily(deps.topology.requests, deps.topology, config.worker.retryDelaysMs);
      const queues = [family.queue, ...family.levels.map((level) => level.queue)];
      for (;;) {
        deps.relay.notify();
        try {
          const depths = await Promise.all(queues.map((q) => deps.broker.queueDepth(q)));
          if (depths.every((d) => !d) && (await deps.store.outbox.pendingCount()) === 0) return true;
        } catch {
          // The store not answering: what is left waits for the next start, as before.
          return false;
        }
        if (performance.now() >= until) return false;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };

    let closed = false;
    return {
      url,
      port: address.port,
      deps,
      async close() {
        if (closed) return;
        closed = true;
        for (const t of timers) clearInterval(t);
        // Each step logged with how long it took, so a slow stop says where it waited.
        const began = performance.now();
        const step = async (name: string, run: () => Promise<unknown>) => {
          await run();
          logger.debug({ step: name, ms: Math.round(performance.now() - began) }, 'shutdown step done');
        };
        // Stop taking requests and stop consuming at once, then wait for both to drain: a request accepted
        // while the queue drains (up to 20 s at a slow Stripe) could outlast the process's 25 s budget.
        stopping = true;
        const drainBy = began + (opts.handlerDrainMs ?? 15_000);
        const httpClosed = new Promise<void>((resolve) => server!.close(() => resolve()));
        // A connection that has sent part of a head held the close (and so the stop) until the shutdown timer ended the
        // process, exit 1, with the outbox unflushed and the store open: closed at once, as an idle one is. One whose
        // request's body is still arriving gets until the handlers' deadline; a request taken whole is answered.
        closeUntaken(false);
        const httpDone = waitBounded(httpClosed, Math.max(0, drainBy - performance.now())).then(
          async (inTime) => {
            if (!inTime && closeUntaken(true) > 0)
              logger.warn('connections whose request had not all arrived are closed at shutdown');
            await httpClosed;
          },
        );
        // Once no connection is left no request can begin: then wait for those whose handlers outlived their
        // answer (the request timeout answered 503 while the Stripe call went on), so that what Stripe did is written
        // (and their Idempotency-Key settled) before the store closes. Closed under them, a refund Stripe made stayed
        // `processing` and its key in progress, and the client's retry got 409 for ten minutes. Bounded, as webhooks.
        const handlersDone = httpDone.then(() =>
          waitBounded(work.idle(), Math.max(0, drainBy - performance.now())),
        );
        if (deps.sandbox && deps.broker.kind === 'memory' && consumer) {
          // Embedded mode: the ledger outlives the process, but the sandbox that made its payments does not. A refund
          // left in the in-process queue is queued again from the ledger at the next start, where a new sandbox has
          // never heard of its payment intent: it ended failed (resource_missing), though it was answered 202. So the
          // worker goes on until the requests taken are queued and made (each a local call), for a while.
          await step('http server closed', () => httpDone);
          await step('in-process queue emptied', async () => {
            if (!(await emptyInProcessQueue(began + EMBEDDED_QUEUE_DRAIN_MS)))
              logger.warn(
                'refunds still in the in-process queue at shutdown; the next start queues them again, but its sandbox will not know their payments',
              );
          });
          await step('consumer cancelled', async () => consumer?.cancel());
        } else {
          await step('consumer cancelled', async () => consumer?.cancel());
          await step('http server closed', () => httpDone);
        }
        await step('request handlers done', async () => {
          if (!(await handlersDone))
            logger.warn(
              'request handlers still at work at shutdown; what they do from now on may not be recorded',
            );
        });
        // Bounded: an event whose Stripe read hangs must not keep the process from stopping (and its outbox from
        // being flushed) until the shutdown timer kills it. The event is stored; applying it again is safe.
        await step('webhook tasks idle', async () => {
          const left = began + (opts.webhookDrainMs ?? 15_000) - performance.now();
          if (!(await waitBounded(deps.webhooks.idle(), Math.max(0, left))))
            logger.warn(
              'webhook events still being applied at shutdown; they stay stored and are applied later',
            );
        });
        await step('outbox relay stopped', () => deps.relay.stop());
        await step('housekeeping done', () => housekeepingRun);
        await step('dependencies closed', () => deps.close());
      },
    };
  } catch (err) {
    stopping = true;
    for (const t of timers) clearInterval(t);
    await consumer?.cancel().catch(() => undefined);
    // A start stopped once it listened may have requests under way: they finish (their connections close after
    // their answer) and what their handlers do is written before the store closes, as in close(), within its bounds.
    if (server?.listening) {
      const drainBy = performance.now() + (opts.handlerDrainMs ?? 15_000);
      const httpClosed = new Promise<void>((resolve) => server!.close(() => resolve()));
      server.closeIdleConnections();
      if (!(await waitBounded(httpClosed, opts.handlerDrainMs ?? 15_000))) server.closeAllConnections();
      await waitBounded(work.idle(), Math.max(0, drainBy - performance.now()));
    } else {
      server?.close();
    }
    if (relayStarted) await deps.relay.stop().catch(() => undefined);
    await housekeepingRun;
    await deps.close();
    throw err;
  }
}
