/**
 * Prometheus metrics for one service instance (its own registry: no module-level state). Counters move
 * as work is done; ledger and queue figures are read when Prometheus scrapes.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Broker, TopologyNames } from '../queue/index.js';
import { OPEN_REFUND_STATUSES } from '../store/index.js';

import type { Store } from '../store/index.js';

/** How long a scrape waits for the database's answers before it reports them unknown. */
const STORE_SCRAPE_TIMEOUT_MS = 3_000;
/** How long a scrape waits for RabbitMQ's queue depths before it reports them unknown. */
const QUEUE_SCRAPE_TIMEOUT_MS = 3_000;

type DepthLabel = 'requests' | 'dead_letter' | 'responses';

/** processed: stored (to be applied); duplicate: stored before; rejected: failed verification; failed: not stored. */
export type WebhookOutcome = 'processed' | 'duplicate' | 'ignored' | 'rejected' | 'failed';

export interface Metrics {
  readonly registry: Registry;
  observeHttp(info: { operationId: string | undefined; status: number; seconds: number }): void;
  observeStripe(info: { method: string; path: string; status: number; elapsedMs: number }): void;
  observeWebhook(type: string, outcome: WebhookOutcome): void;
  /** A refund this process moved into a final status (after the commit). */
  observeRefundFinal(status: string): void;
  /** An outbox row the broker's client refuses as it is, set aside by this process's relay (each try). */
  observeOutboxUnpublishable(): void;
  /** Ledger and queue figures are read at scrape time. */
  attach(sources: { store: Store; broker: Broker; topology: TopologyNames }): void;
  render(): Promise<string>;
}

// Whatever follows a Stripe id prefix: ids reach Stripe as callers spelt them (the contract allows `.` and `-`),
// and each distinct label value would be new series for as long as the process runs.
const ID_SEGMENT = /^(pi|ch|re|cs|evt|pm|cus|py|txn|seti)_[^/]+$/;
/**
 * The API's own words (`payment_intents`, `line_items`, `cancel`) and its version: lowercase letters and
 * underscores only. Any other segment is an id, whatever its prefix: Stripe gives some refunds `pyr_` ids, and the
 * service reads a refund by the id a webhook names, so a list of prefixes alone let each such refund become a label.
 */
const WORD_SEGMENT = /^(?:[a-z_]+|v\d+)$/;

/** `/v1/refunds/re_123` → `POST /v1/refunds/:id`, so labels stay few. */
export function stripeOperation(method: string, path: string): string {
  const clean = path.split('?')[0]!;
  return `${method.toUpperCase()} ${clean
    .split('/')
    .map((seg) => (seg === '' || (WORD_SEGMENT.test(seg) && !ID_SEGMENT.test(seg)) ? seg : ':id'))
    .join('/')}`;
}

/** Whole seconds from `iso` to `now`; never negative (another process's clock may be ahead of ours). */
function ageSeconds(iso: string, now: number): number {
  return Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
}

function outcomeOf(status: number): string {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 402) return 'card_error';
  if (status === 429) return 'rate_limited';
  if (status === 0) return 'no_answer';
  if (status >= 500) return 'error';
  return 'client_error';
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'payments_process_' });
  const httpRequests = new Counter({
    name: 'payments_http_requests_total',
    help: 'HTTP requests by operation and status.',
    labelNames: ['operation', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'payments_http_request_duration_seconds',
    help: 'HTTP request latency by operation.',
    labelNames: ['operation'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const stripeCalls = new Counter({
    name: 'payments_stripe_requests_total',
    help: 'HTTP requests to Stripe, each retry of the SDK counted, by operation and outcome (ok, card_error, client_error, rate_limited, error for 5xx, no_answer for a refused or reset connection or a timeout).',
    labelNames: ['operation', 'outcome'] as const,
    registers: [registry],
  });
  const stripeDuration = new Histogram({
    name: 'payments_stripe_request_duration_seconds',
    help: 'Latency of each HTTP request to Stripe (each retry on its own) by operation.',
    labelNames: ['operation'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const webhookEvents = new Counter({
    name: 'payments_webhook_events_total',
    help: 'Stripe webhook deliveries by event type and outcome: processed (stored, to be applied), duplicate, ignored (a verified thin event, answered 200 and not stored), rejected (failed verification, type unverified), failed (verified but not stored, answered 5xx).',
    labelNames: ['type', 'outcome'] as const,
    registers: [registry],
  });
  const refundsFinal = new Counter({
    name: 'payments_refunds_final_total',
    // Counted where the move is committed, so each move is counted once across processes (sum them).
    // A refund given up on as failed that Stripe did make is counted again when it is put right.
    help: 'Refunds moved into a final status (succeeded, failed, canceled) by this process; one Stripe fails after it succeeded counts under both.',
    labelNames: ['status'] as const,
    registers: [registry],
  });
  // No labels: the row's ids would be a new series each, and its destination is in the log line that names it.
  // Unlabelled, the series exists at 0 from the start, so an alert on its increase sees the first row.
  const outboxUnpublishable = new Counter({
    name: 'payments_outbox_unpublishable_total',
    help: "Outbox messages this process's relay set aside because the broker's client refuses them as they are (a message id or routing key over 255 bytes); each row counted once, by the process that first set it aside, not at its hourly tries after. Such a message stays unsent until an operator repairs or deletes its row.",
    registers: [registry],
  });
  let sources: { store: Store; broker: Broker; topology: TopologyNames } | null = null;
  new Gauge({
    name: 'payments_refunds',
    // Only statuses a refund can still leave: counting the final ones walks every refund ever made,
    // on every scrape (on SQLite, on the event loop).
    help: 'Refunds not yet final (queued, processing, pending, requires_action), by status.',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const snapshot = await storeSnapshot();
      // Unknown while the database does not answer: no series rather than stale ones.
      if (!snapshot) this.reset();
      else for (const [status, n] of Object.entries(snapshot.counts)) this.set({ status }, n);
    },
  });
  new Gauge({
    name: 'payments_outbox_backlog',
    help: 'Outbox messages not yet confirmed by the broker.',
    registers: [registry],
    async collect() {
      if (!sources) return;
      const snapshot = await storeSnapshot();
      if (snapshot) this.set(snapshot.backlog);
      else this.remove(); // no series while unknown
    },
  });
  // Counts alone cannot tell a backlog that moves from one that is stuck: these say how long the oldest has waited.
  new Gauge({
    name: 'payments_refunds_oldest_age_seconds',
    help: 'Per status not yet final, seconds since the refund longest in it last changed (0 when none is); a refund queued or processing untouched for 10 minutes is queued again by the stuck-refund sweep.',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const snapshot = await storeSnapshot();
      if (!snapshot) return this.reset();
      for (const status of OPEN_REFUND_STATUSES) {
        const since = snapshot.oldestUpdate[status];
        this.set({ status }, since === undefined ? 0 : ageSeconds(since, snapshot.at));
      }
    },
  });
  new Gauge({
    name: 'payments_outbox_oldest_age_seconds',
    help: 'Seconds since the oldest outbox message not yet confirmed by the broker was written (0 when none waits).',
    registers: [registry],
    async collect() {
      if (!sources) return;
      const snapshot = await storeSnapshot();
      if (!snapshot) return this.remove();
      this.set(snapshot.oldestPending === null ? 0 : ageSeconds(snapshot.oldestPending, snapshot.at));
    },
  });
  new Gauge({
    name: 'payments_webhook_events_unapplied',
    help: 'Stripe events stored but not yet applied to the ledger (normally 0 within a second; a failed one is retried with backoff).',
    registers: [registry],
    async collect() {
      if (!sources) return;
      const snapshot = await storeSnapshot();
      if (!snapshot) return this.remove();
      this.set(snapshot.unappliedEvents);
    },
  });
  new Gauge({
    name: 'payments_store_up',
    help: "1 when this scrape's reads of the database (the refund, outbox and unapplied webhook event gauges) were answered, else 0.",
    registers: [registry],
    async collect() {
      if (sources) this.set((await storeSnapshot()) ? 1 : 0);
    },
  });
  // A scrape goes on while the database is away (that is when the HTTP and Stripe figures matter most): the
  // gauges read from it say so through payments_store_up instead of failing the whole scrape. The registry
  // collects every metric at once, so the three share one read of the store per scrape.
  interface StoreSnapshot {
    at: number;
    counts: Record<string, number>;
    backlog: number;
    oldestUpdate: Partial<Record<string, string>>;
    oldestPending: string | null;
    unappliedEvents: number;
  }
  let snapshotInFlight: Promise<StoreSnapshot | null> | null = null;
  /**
   * The database's read under way, kept until it is answered (DATABASE_TIMEOUT_MS bounds it), not only until a
   * scrape gives up on it: a scrape after one that gave up started a read of its own beside the unanswered one, so
   * anyone scraping every few seconds while the database was slow queued five more queries a scrape on the
   * background pool (two connections, shared with the outbox relay and its lease renewals).
   */
  let reading: Promise<StoreSnapshot | null> | null = null;
  function storeSnapshot(): Promise<StoreSnapshot | null> {
    if (!sources) return Promise.resolve(null);
    const { store } = sources;
    if (snapshotInFlight) return snapshotInFlight;
    let timer: NodeJS.Timeout | undefined;
    // Bounded well inside a scrape's timeout (Prometheus: 10 s), for a database that does not answer at all.
    const late = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), STORE_SCRAPE_TIMEOUT_MS);
    });
    reading ??= Promise.all([
      store.refunds.countByStatus(OPEN_REFUND_STATUSES),
      store.outbox.pendingCount(),
      store.refunds.oldestUpdateByStatus(OPEN_REFUND_STATUSES),
      store.outbox.oldestPendingCreatedAt(),
      store.inbox.countUnprocessed(),
    ])
      .then(([counts, backlog, oldestUpdate, oldestPending, unappliedEvents]): StoreSnapshot => ({
        at: Date.now(),
        counts,
        backlog,
        oldestUpdate,
        oldestPending,
        unappliedEvents,
      }))
      .catch(() => null)
      .finally(() => {
        reading = null;
      });
    snapshotInFlight = Promise.race([reading, late]).finally(() => {
      clearTimeout(timer);
      snapshotInFlight = null;
    });
    return snapshotInFlight;
  }
  new Gauge({
    name: 'payments_queue_depth',
    help: 'Messages ready in the refund queues (requests, dead_letter, responses); no series while the broker cannot tell.',
    labelNames: ['queue'] as const,
    registers: [registry],
    async collect() {
      if (!sources) return;
      const depths = await queueDepths();
      // A depth the broker cannot tell now (disconnected, queue missing) is unknown, not the last one read: a
      // dead-letter queue filling up while RabbitMQ is unreachable must not go on showing the figure from before.
      this.reset();
      for (const [label, depth] of depths) if (depth !== null) this.set({ queue: label }, depth);
    },
  });
  /**
   * The depths being read, shared by every scrape arriving meanwhile and kept until RabbitMQ answers (not until a
   * scrape gives up on it). Each scrape asked on its own, each question on a channel opened for it: a burst of
   * scrapes (anyone may scrape, by default) opened three channels a scrape at once on a connection the refunds go
   * through (the consuming one in a process that runs the worker, where its deliveries and acks are, else the
   * publishing one), and while RabbitMQ did not answer, each scrape waited for as long as the connection took to be
   * given up on (its heartbeat: a minute or more) and opened three more channels behind the others.
   */
  let depthsReading: Promise<(readonly [DepthLabel, number | null])[]> | null = null;
  async function queueDepths(): Promise<(readonly [DepthLabel, number | null])[]> {
    if (!sources) return [];
    const { broker, topology } = sources;
    const queues = [
      ['requests', topology.requests],
      ['dead_letter', topology.deadLetter],
      ['responses', topology.responses],
    ] as const;
    depthsReading ??= Promise.all(
      queues.map(
        async ([label, queue]) => [label, await broker.queueDepth(queue).catch(() => null)] as const,
      ),
    ).finally(() => {
      depthsReading = null;
    });
    let timer: NodeJS.Timeout | undefined;
    const unknown = queues.map(([label]) => [label, null] as const);
    const late = new Promise<typeof unknown>((resolve) => {
      timer = setTimeout(() => resolve(unknown), QUEUE_SCRAPE_TIMEOUT_MS);
    });
    try {
      return await Promise.race([depthsReading, late]);
    } finally {
      clearTimeout(timer);
    }
  }
  new Gauge({
    name: 'payments_broker_connected',
    help: "1 when every connection of this process to the message broker is up (a worker's consuming one too).",
    registers: [registry],
    collect() {
      if (!sources) return;
      const { broker } = sources;
      const up = broker.isConnected() && Object.values(broker.connections?.() ?? {}).every(Boolean);
      this.set(up ? 1 : 0);
    },
  });
  new Gauge({
    name: 'payments_broker_connection_up',
    help: 'Per connection to RabbitMQ, 1 while it is up: `publish` (the outbox relay, retry and dead-letter copies), and `consume` in a process that runs the worker (deliveries and their acks).',
    labelNames: ['connection'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const connections = sources?.broker.connections?.() ?? {};
      for (const [connection, up] of Object.entries(connections))
        if (up !== undefined) this.set({ connection }, up ? 1 : 0);
    },
  });

  return {
    registry,
    observeHttp({ operationId, status, seconds }) {
      const operation = operationId ?? 'none';
      httpRequests.inc({ operation, status: String(status) });
      httpDuration.observe({ operation }, seconds);
    },
    observeStripe({ method, path, status, elapsedMs }) {
      const operation = stripeOperation(method, path);
      stripeCalls.inc({ operation, outcome: outcomeOf(status) });
      stripeDuration.observe({ operation }, elapsedMs / 1000);
    },
    observeWebhook(type, outcome) {
      webhookEvents.inc({ type, outcome });
    },
    observeRefundFinal(status) {
      refundsFinal.inc({ status });
    },
    observeOutboxUnpublishable() {
      outboxUnpublishable.inc();
    },
    attach(s) {
      sources = s;
    },
    render: () => registry.metrics(),
  };
}
