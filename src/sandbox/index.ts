import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { chargeRoutes } from './charges.js';
import { checkoutSessionRoutes } from './checkout-sessions.js';
import { RefundTimers, SandboxState, type SandboxContext } from './context.js';
import { EventLog } from './event-log.js';
import { eventRoutes } from './event-routes.js';
import { FaultInjector } from './faults.js';
import { IdempotencyStore } from './idempotency.js';
import {
  configuredHostName,
  isLoopbackAddress,
  isLoopbackHost,
  misdirectedDetail,
} from '../http/loopback-host.js';
import { createIdFactory } from './ids.js';
import { paymentIntentRoutes } from './payment-intents.js';
import { paymentMethodRoutes } from './payment-methods.js';
import { refundRoutes } from './refunds.js';
import { RequestLog, type CapturedRequest } from './request-log.js';
import { Router } from './router.js';
import { createRequestListener } from './server.js';
import { WebhookDispatcher, type WebhookEndpointConfig, type WebhookStats } from './webhook-dispatcher.js';

export type { WebhookEndpointConfig } from './webhook-dispatcher.js';
export type { FaultConfig } from './faults.js';
export type { CapturedRequest } from './request-log.js';
export { signPayload } from './webhook-dispatcher.js';
export { listTestCards, type TestCard } from './test-cards.js';

/** The API version the sandbox reports, matching what stripe@23.1.0 pins. */
export const SANDBOX_API_VERSION = '2026-10-28.endive';

export interface SandboxOptions {
  /** Default 0: a free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Base of the links the sandbox hands out (hosted checkout URLs), e.g. behind Docker; default `url`. */
  publicUrl?: string;
  /** When set only this key is accepted; otherwise any `sk_test_` key. */
  secretKey?: string;
  webhookEndpoints?: WebhookEndpointConfig[];
  /** How long "pending" test refunds stay pending. Default 1000. */
  refundSettleDelayMs?: number;
  /** Webhook retries: attempts include the first try. Defaults 8 attempts from 200 ms, capped at 10 s. */
  webhookRetry?: { attempts?: number; initialDelayMs?: number; maxDelayMs?: number };
  /** Concurrent webhook deliveries. Default 16. */
  webhookConcurrency?: number;
  /** Per-delivery timeout. Default 10 000 ms. */
  webhookTimeoutMs?: number;
  /** Default: silent. */
  logger?: Logger;
  /** API exchanges kept for `GET /_sandbox/requests` and `capturedRequests()`. Default 200. */
  captureRequests?: number;
  /** Events kept for the events API (oldest dropped first). Default 20 000. */
  maxEvents?: number;
  /** Stored idempotent results kept (oldest dropped first). Default 100 000 entries / 32 MiB of bodies. */
  maxIdempotencyEntries?: number;
  maxIdempotencyBytes?: number;
  /** Largest accepted request body. Default 1 MiB. */
  maxBodyBytes?: number;
  /**
   * Payment intents, charges, refunds, checkout sessions and payment methods kept, each (the oldest
   * dropped first, then answering 404 like an unknown id). Default: all of them.
   */
  maxObjects?: number;
}

export interface SandboxStats {
  paymentIntents: number;
  paymentMethods: number;
  charges: number;
  refunds: number;
  checkoutSessions: number;
  events: number;
  idempotencyKeys: number;
  pendingRefundTimers: number;
  webhooks: WebhookStats;
}

export interface Sandbox {
  /** e.g. http://127.0.0.1:54321 */
  readonly url: string;
  readonly port: number;
  /** Runtime registration, for a service that learns its own port late. */
  addWebhookEndpoint(ep: WebhookEndpointConfig): void;
  /** Clears all objects, events, idempotency keys, faults, pending refunds and webhook deliveries. */
  reset(): void;
  /** Stops the server, cancels timers and pending webhook retries. */
  close(): Promise<void>;
  stats(): SandboxStats;
  capturedRequests(): CapturedRequest[];
}

export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const logger = options.logger ?? pino({ level: 'silent' });
  const ids = createIdFactory();
  const dispatcher = new WebhookDispatcher({
    logger,
    retry: {
      attempts: Math.max(1, options.webhookRetry?.attempts ?? 8),
      initialDelayMs: Math.max(0, options.webhookRetry?.initialDelayMs ?? 200),
      maxDelayMs: Math.max(0, options.webhookRetry?.maxDelayMs ?? 10_000),
    },
    concurrency: Math.max(1, options.webhookConcurrency ?? 16),
    timeoutMs: Math.max(1, options.webhookTimeoutMs ?? 10_000),
    maxQueue: 200_000,
  });
  for (const endpoint of options.webhookEndpoints ?? []) dispatcher.addEndpoint(endpoint);
  const events = new EventLog({
    ids,
    apiVersion: SANDBOX_API_VERSION,
    maxEvents: options.maxEvents ?? 20_000,
    dispatcher,
  });
  dispatcher.onDelivered = (eventId) => events.markDelivered(eventId);

  let baseUrl = '';
  const maxObjects = options.maxObjects ?? Number.POSITIVE_INFINITY;
  if (!(maxObjects >= 1)) throw new RangeError('maxObjects must be at least 1');
  const state = new SandboxState(maxObjects);
  const refundTimers = new RefundTimers();
  const ctx: SandboxContext = {
    state,
    events,
    ids,
    refundTimers,
    logger,
    refundSettleDelayMs: Math.max(0, options.refundSettleDelayMs ?? 1000),
    paymentMethodConfigurationId: ids.id('pmc', 24),
    baseUrl: () => baseUrl,
  };
  const faults = new FaultInjector();
  const idempotency = new IdempotencyStore({
    ttlMs: 24 * 60 * 60 * 1000,
    maxEntries: options.maxIdempotencyEntries ?? 100_000,
    maxBytes: options.maxIdempotencyBytes ?? 32 * 1024 * 1024,
  });
  const requestLog = new RequestLog(options.captureRequests ?? 200);
  const router = new Router([
    ...paymentIntentRoutes(ctx),
    ...chargeRoutes(ctx),
    ...refundRoutes(ctx),
    ...checkoutSessionRoutes(ctx),
    ...eventRoutes(ctx),
    ...paymentMethodRoutes(ctx),
  ]);

  const reset = (): void => {
    refundTimers.clear();
    dispatcher.reset();
    state.clear();
    events.clear();
    idempotency.clear();
    faults.clear();
    requestLog.clear();
  };
  const stats = (): SandboxStats => ({
    paymentIntents: state.paymentIntents.size,
    paymentMethods: state.paymentMethods.size,
    charges: state.charges.size,
    refunds: state.refunds.size,
    checkoutSessions: state.checkoutSessions.size,
    events: events.size,
    idempotencyKeys: idempotency.size,
    pendingRefundTimers: refundTimers.size,
    webhooks: dispatcher.stats(),
  });
  const addWebhookEndpoint = (ep: WebhookEndpointConfig): void => dispatcher.addEndpoint(ep);
  // Set once listening: the bound address when it is loopback (then only loopback names are answered).
  let loopback: string | null = null;
  // The names the sandbox was given (its host, the host of its public URL) are answered too.
  const publicName = configuredHostName(
    options.publicUrl && URL.canParse(options.publicUrl)
      ? new URL(options.publicUrl).hostname
      : (options.host ?? '127.0.0.1'),
  );
  const misdirected = (requested: string | undefined): string | null =>
    loopback === null || isLoopbackHost(requested, publicName)
      ? null
      : misdirectedDetail(requested ?? '', loopback, 'SANDBOX_HOST');

  const server = http.createServer(
    createRequestListener({
      ctx,
      router,
      faults,
      idempotency,
      requestLog,
      logger,
      secretKey: options.secretKey,
      apiVersion: SANDBOX_API_VERSION,
      maxBodyBytes: options.maxBodyBytes ?? 1024 * 1024,
      misdirected,
      reset,
      addWebhookEndpoint,
      stats,
    }),
  );
  // Longer than the SDK agent's idle time, so a reused keep-alive socket is not closed under it.
  server.keepAliveTimeout = 30_000;
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const body = JSON.stringify({
      error: { type: 'invalid_request_error', message: 'The request could not be parsed as HTTP.' },
    });
    socket.end(
      `HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: application/json\r\n` +
        'X-Content-Type-Options: nosniff\r\n' +
        `Request-Id: req_${ids.random(14)}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  });

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const port = bound.port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  baseUrl = (options.publicUrl ?? url).replace(/\/+$/, '');
  loopback = isLoopbackAddress(bound.address) ? bound.address : null;
  logger.info({ url, publicUrl: baseUrl }, 'Stripe sandbox listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    addWebhookEndpoint,
    reset,
    stats,
    capturedRequests: () => requestLog.list(),
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        refundTimers.clear();
        dispatcher.close();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
