/**
 * Prometheus metrics for one service instance (its own registry: no module-level state). Counters move
 * as work is done; ledger and queue figures are read when Prometheus scrapes.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Broker, TopologyNames } from '../queue/index.js';
import { OPEN_REFUND_STATUSES } from '../store/index.js';
import type { Store } from '../store/index.js';

export interface Metrics {
  readonly registry: Registry;
  observeHttp(info: { operationId: string | undefined; status: number; seconds: number }): void;
  observeStripe(info: { method: string; path: string; status: number; elapsedMs: number }): void;
  observeWebhook(type: string, outcome: 'processed' | 'duplicate' | 'rejected'): void;
  /** A refund this process moved into a final status (after the commit). */
  observeRefundFinal(status: string): void;
  /** Ledger and queue figures are read at scrape time. */
  attach(sources: { store: Store; broker: Broker; topology: TopologyNames }): void;
  render(): Promise<string>;
}

// Whatever follows a Stripe id prefix: ids reach Stripe as callers spelt them (the contract allows `.` and `-`),
// and each distinct label value would be new series for as long as the process runs.
const ID_SEGMENT = /^(pi|ch|re|cs|evt|pm|cus|py|txn|seti)_[^/]+$/;

/** `/v1/refunds/re_123` → `POST /v1/refunds/:id`, so labels stay few. */
export function stripeOperation(method: string, path: string): string {
  const clean = path.split('?')[0]!;
  return `${method.toUpperCase()} ${clean
    .split('/')
    .map((seg) => (ID_SEGMENT.test(seg) ? ':id' : seg))
    .join('/')}`;
}

function outcomeOf(status: number): string {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 402) return 'card_error';
  if (status === 429) return 'rate_limited';
  if (status >= 500 || status === 0) return 'error';
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
    help: 'Calls to Stripe by operation and outcome.',
    labelNames: ['operation', 'outcome'] as const,
    registers: [registry],
  });
  const stripeDuration = new Histogram({
    name: 'payments_stripe_request_duration_seconds',
    help: 'Stripe call latency by operation.',
    labelNames: ['operation'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const webhookEvents = new Counter({
    name: 'payments_webhook_events_total',
    help: 'Stripe webhook deliveries by event type and outcome.',
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
  let sources: { store: Store; broker: Broker; topology: TopologyNames } | null = null;
  new Gauge({
    name: 'payments_refunds',
    // Only statuses a refund can still leave: counting the final ones walks every refund ever made,
    // on every scrape (on SQLite, on the event loop).
    help: 'Refunds not yet final (queued, processing, pending, requires_action), by status.',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      if (!sources) return;
      const counts = await sources.store.refunds.countByStatus(OPEN_REFUND_STATUSES);
      for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
    },
  });
  new Gauge({
    name: 'payments_outbox_backlog',
    help: 'Outbox messages not yet confirmed by the broker.',
    registers: [registry],
    async collect() {
      if (sources) this.set(await sources.store.outbox.pendingCount());
    },
  });
  new Gauge({
    name: 'payments_queue_depth',
    help: 'Messages ready in the refund queues (requests, dead-letter), when the broker can tell.',
    labelNames: ['queue'] as const,
    registers: [registry],
    async collect() {
      if (!sources) return;
      const { broker, topology } = sources;
      for (const [label, queue] of [
        ['requests', topology.requests],
        ['dead_letter', topology.deadLetter],
        ['responses', topology.responses],
      ] as const) {
        const depth = await broker.queueDepth(queue).catch(() => null);
        if (depth !== null) this.set({ queue: label }, depth);
      }
    },
  });
  new Gauge({
    name: 'payments_broker_connected',
    help: '1 when the message broker is connected.',
    registers: [registry],
    collect() {
      if (sources) this.set(sources.broker.isConnected() ? 1 : 0);
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
    attach(s) {
      sources = s;
    },
    render: () => registry.metrics(),
  };
}
