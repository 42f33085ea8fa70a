/**
 * The one place that builds the Stripe SDK client. Host, port and protocol come from configuration so the
 * same code talks to api.stripe.com, the standalone sandbox, or the in-process sandbox.
 */
import { createHash } from 'node:crypto';
import Stripe from 'stripe';
import type { Logger } from 'pino';

export type StripeClient = Stripe;

export interface StripeClientOptions {
  secretKey: string;
  /** null = api.stripe.com */
  apiBase: URL | null;
  timeoutMs: number;
  maxNetworkRetries: number;
  /** Put with a colon before every idempotency key this client sends (STRIPE_IDEMPOTENCY_PREFIX). */
  idempotencyPrefix?: string | null;
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

/**
 * Ids of the work a Stripe call is made for (the HTTP request, the refund, the payment, the webhook event), put on
 * its 'stripe call' line. Under the same names as on the work's own lines, so that one filter finds both.
 */
export interface StripeLogContext {
  reqId?: string | undefined;
  request_id?: string | undefined;
  payment_intent?: string | undefined;
  eventId?: string | undefined;
}

/**
 * The request-options header the context travels in from a call site to the HTTP client below, which takes it out
 * before the request leaves: Stripe never sees it. A header rather than AsyncLocalStorage, which on Node 20 slows
 * every await of the process (3-4 times over in a loop of awaits), on every request, for a few log fields.
 */
const LOG_CONTEXT_HEADER = 'X-Payments-Log-Context';
/** As the SDK spells it (it makes every spelling a caller gives this one). */
const IDEMPOTENCY_HEADER = 'Idempotency-Key';

/** Request options that put `context` on the call's 'stripe call' lines; spread them into the call's options. */
export function logContextOptions(context: StripeLogContext): { headers: Record<string, string> } {
  const fields: Record<string, string> = {};
  // for...in rather than Object.entries: no array of pairs on every Stripe call.
  for (const k in context) {
    const v = context[k as keyof StripeLogContext];
    if (typeof v === 'string') fields[k] = v;
  }
  return { headers: { [LOG_CONTEXT_HEADER]: JSON.stringify(fields) } };
}

/**
 * The context a call site gave (as it travelled, JSON: parsed by contextOf only for a line that is written), and
 * the headers to send without it.
 */
function takeLogContext(headers: Record<string, unknown>): {
  context: string | undefined;
  headers: Record<string, unknown>;
} {
  const raw = headers[LOG_CONTEXT_HEADER];
  if (typeof raw !== 'string') return { context: undefined, headers };
  const { [LOG_CONTEXT_HEADER]: _taken, ...rest } = headers;
  return { context: raw, headers: rest };
}

function contextOf(raw: string | undefined): Record<string, unknown> {
  if (raw === undefined) return {};
  try {
    return JSON.parse(raw) as Record<string, unknown>;
  } catch {
    return {};
  }
}

/** The longest idempotency key Stripe takes. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
const KEY_DIGEST_LENGTH = 64;

/**
 * `key` as sent to Stripe: as it is when it fits, else its first characters, `~` and the SHA-256 (hex) of the whole
 * key, 255 characters in all. The service's keys are made of parts clients and operators choose
 * (STRIPE_IDEMPOTENCY_PREFIX up to 40, an owner up to 63, a request_id up to 128, a lowered refund's amount and
 * generation), whose longest sum is just over 255: Stripe refused such a call (400) on every try. The same key is
 * always shortened alike, and keys differing anywhere stay two; a key that fits, every key today, is unchanged.
 */
export function fitIdempotencyKey(key: string): string {
  if (key.length <= MAX_IDEMPOTENCY_KEY_LENGTH) return key;
  const head = key.slice(0, MAX_IDEMPOTENCY_KEY_LENGTH - KEY_DIGEST_LENGTH - 1);
  return `${head}~${createHash('sha256').update(key).digest('hex')}`;
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
  httpClient.makeRequest = (host, port, path, method, allHeaders, body, protocol, timeout) => {
    const started = performance.now();
    const { context, headers: sent } = takeLogContext(allHeaders);
    // Here rather than at each call site, so that no call (the SDK's own keys for its retries included) is missed.
    // On a new object: the SDK's own is not ours to change.
    const key = sent[IDEMPOTENCY_HEADER];
    const sentKey =
      typeof key === 'string'
        ? fitIdempotencyKey(opts.idempotencyPrefix ? `${opts.idempotencyPrefix}:${key}` : key)
        : key;
    const headers = sentKey === key ? sent : { ...sent, [IDEMPOTENCY_HEADER]: sentKey };
    return send(host, port, path, method, headers as typeof allHeaders, body, protocol, timeout).then(
      (res) => {
        const requestId = res.getHeaders()['request-id'];
        const event = {
          method,
          path,
          status: res.getStatusCode(),
          elapsedMs: Math.round(performance.now() - started),
          requestId: typeof requestId === 'string' ? requestId : undefined,
        };
        // Stripe's request id is what their support asks for; log it for every request. Checked first: below
        // info (LOG_LEVEL=warn) the line's object, spread from the call site's context, was built for nothing on
        // every call.
        if (log.isLevelEnabled('info'))
          log.info(
            {
              ...contextOf(context),
              stripeRequestId: event.requestId,
              method,
              path,
              status: event.status,
              ms: event.elapsedMs,
            },
            'stripe call',
          );
        observe?.(event);
        return res;
      },
      (err: unknown) => {
        const elapsedMs = Math.round(performance.now() - started);
        const reason = (err as { code?: unknown }).code ?? (err instanceof Error ? err.message : 'unknown');
        log.info(
          { ...contextOf(context), method, path, status: 0, ms: elapsedMs, reason },
          'stripe call got no answer',
        );
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
