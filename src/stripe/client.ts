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
  /**
   * One HTTP request to Stripe: every attempt the SDK makes, its own retries included. `status` is 0 when no
   * answer came (connection refused or reset, timeout).
   */
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
  const log = logger.child({ component: 'stripe' });
  // Observed at the HTTP client rather than through the SDK's 'response' event: that event fires once per call,
  // for its last attempt only (a 500 the SDK retried is never seen, the elapsed time is the last attempt's), and
  // never for a call that got no answer at all (Stripe unreachable, a timeout), the failures that matter most.
  const httpClient = Stripe.createNodeHttpClient();
  const send = httpClient.makeRequest.bind(httpClient);
  httpClient.makeRequest = (host, port, path, method, headers, body, protocol, timeout) => {
    const started = performance.now();
    return send(host, port, path, method, headers, body, protocol, timeout).then(
      (res) => {
        const requestId = res.getHeaders()['request-id'];
        const event = {
          method,
          path,
          status: res.getStatusCode(),
          elapsedMs: Math.round(performance.now() - started),
          requestId: typeof requestId === 'string' ? requestId : undefined,
        };
        // Stripe's request id is what their support asks for; log it for every request.
        log.info(
          { stripeRequestId: event.requestId, method, path, status: event.status, ms: event.elapsedMs },
          'stripe call',
        );
        observe?.(event);
        return res;
      },
      (err: unknown) => {
        const elapsedMs = Math.round(performance.now() - started);
        const reason = (err as { code?: unknown }).code ?? (err instanceof Error ? err.message : 'unknown');
        log.info({ method, path, status: 0, ms: elapsedMs, reason }, 'stripe call got no answer');
        observe?.({ method, path, status: 0, elapsedMs, requestId: undefined });
        throw err;
      },
    );
  };
  return new Stripe(opts.secretKey, {
    timeout: opts.timeoutMs,
    maxNetworkRetries: opts.maxNetworkRetries,
    telemetry: false,
    httpClient,
    appInfo: { name: 'stripe-payment-service', version: '1.0.0' },
    ...(base
      ? {
          host: base.hostname,
          port: base.port || (base.protocol === 'https:' ? 443 : 80),
          protocol: base.protocol === 'https:' ? 'https' : 'http',
        }
      : {}),
  });
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
