/**
 * The one place that builds the Stripe SDK client. Host, port and protocol come from configuration so the
 * same code talks to api.stripe.com, the standalone sandbox, or the in-process sandbox.
 */
import Stripe from 'stripe';
import type { Logger } from 'pino';

export type StripeClient = Stripe;

export interface StripeClientOptions {
  secretKey: string;
  /** null = api.stripe.com */
  apiBase: URL | null;
  timeoutMs: number;
  maxNetworkRetries: number;
}

export interface StripeCallObserver {
  (event: {
    method: string;
    path: string;
    status: number;
    elapsedMs: number;
    requestId: string | undefined;
  }): void;
}

export function createStripeClient(
  opts: StripeClientOptions,
  logger: Logger,
  observe?: StripeCallObserver,
): StripeClient {
  const base = opts.apiBase;
  const stripe = new Stripe(opts.secretKey, {
    timeout: opts.timeoutMs,
    maxNetworkRetries: opts.maxNetworkRetries,
    telemetry: false,
    appInfo: { name: 'stripe-payment-service', version: '1.0.0' },
    ...(base
      ? {
          host: base.hostname,
          port: base.port || (base.protocol === 'https:' ? 443 : 80),
          protocol: base.protocol === 'https:' ? 'https' : 'http',
        }
      : {}),
  });
  const log = logger.child({ component: 'stripe' });
  stripe.on('response', (e: Stripe.ResponseEvent) => {
    const event = {
      method: e.method,
      path: e.path,
      status: e.status,
      elapsedMs: e.elapsed,
      requestId: e.request_id,
    };
    // Stripe's request id is what their support asks for; log it for every call.
    log.info(
      { stripeRequestId: event.requestId, method: e.method, path: e.path, status: e.status, ms: e.elapsed },
      'stripe call',
    );
    observe?.(event);
  });
  return stripe;
}

/**
 * Runs one SDK call without stripe-node's call-site capture. Before every request the SDK builds
 * `new Error().stack` so that a failure can show where it was called from; with this service's async call
 * chains that string costs ~60 µs of CPU a call (~5% of a POST /payment-intent), on successes too. Every
 * call site here turns a failure into a problem+json answer or a logged retry on the spot, so those frames
 * tell nothing the call site does not. Only errors created synchronously while the call is being set up
 * lose their frames; the limit is restored before anything asynchronous runs.
 */
export function withoutCallSite<T>(call: () => Promise<T>): Promise<T> {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return call();
  } finally {
    Error.stackTraceLimit = limit;
  }
}
