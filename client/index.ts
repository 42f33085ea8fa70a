/**
 * Typed TypeScript client for the payment service: openapi-fetch over the types generated from
 * openapi.yaml, so a wrong path, a missing field or a mistyped body fails to compile. Runs wherever
 * `fetch` does (Node 20+, browsers, workers); it imports nothing from the service itself.
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from '../generated/openapi.js';

export type { components, operations, paths } from '../generated/openapi.js';

type Schemas = components['schemas'];
export type RefundStatus = Schemas['RefundStatus'];
export type RefundState = Schemas['RefundState'];
export type CreateRefundAsyncRequest = Schemas['CreateRefundAsyncRequest'];
export type Problem = Schemas['Problem'];

/**
 * States where refundAndWait stops: the refund's outcome as far as Stripe knows it now. Not quite for ever: a
 * `succeeded` refund becomes `failed` when the customer's bank returns the money (see RefundState), which
 * GET /refund-status shows when it happens.
 */
export const FINAL_REFUND_STATES: readonly RefundState[] = ['succeeded', 'failed', 'canceled'];

export interface PaymentsClientOptions {
  /** Where the service listens, e.g. `http://127.0.0.1:5000`. */
  baseUrl: string;
  /** An API key of this service (`psk_...` or `ppk_...`), sent as `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** A fetch to use instead of the global one (tests, proxies, instrumentation). */
  fetch?: (input: Request) => Promise<Response>;
}

export interface WaitOptions {
  /**
   * Give up after this long (RefundWaitTimeoutError); default 60 s. Bounds the whole wait, the requests
   * included: each is cut off when the time is up, though given at least 1 s.
   */
  timeoutMs?: number;
  /** Delay between two status reads, or longer when the service answers `Retry-After`; default 500 ms. */
  intervalMs?: number;
  signal?: AbortSignal;
}

export interface RefundAndWaitOptions extends WaitOptions {
  /**
   * Idempotency-Key for the POST /refund-async that queues the refund (a body is given). Without it and
   * without a `request_id` in the body, the client picks a `request_id` itself.
   */
  idempotencyKey?: string;
}

export interface PaymentsClient extends Client<paths> {
  /**
   * Follows a queued refund until it reaches a final state (succeeded, failed or canceled) and
   * returns that ledger entry; a failed or canceled refund is returned, not thrown. Given a request
   * body instead of a request id, first queues it with POST /refund-async, sending the same request
   * again (same `request_id` or Idempotency-Key, so the refund is made once) when the answer is lost or
   * is a 408, 429, 5xx or 409 with `Retry-After`, until `timeoutMs`.
   */
  refundAndWait(
    request: string | CreateRefundAsyncRequest,
    options?: RefundAndWaitOptions,
  ): Promise<RefundStatus>;
  /** Request options that send `Idempotency-Key` (see {@link withIdempotencyKey}). */
  withIdempotencyKey: typeof withIdempotencyKey;
}

/** An error answer of the service (RFC 9457 problem details), thrown by the helpers and by {@link unwrap}. */
export class PaymentsApiError extends Error {
  readonly status: number;
  readonly problem: Problem | undefined;
  /** The answer's request id (the problem's `request_id`, else `X-Request-Id`): quote it to support. */
  readonly requestId: string | undefined;
  /** Seconds the service asked to wait before trying again (`Retry-After`), if it did. */
  readonly retryAfter: number | undefined;

  constructor(status: number, problem: unknown, headers?: Headers) {
    const p = isProblem(problem) ? problem : undefined;
    const requestId = p?.request_id ?? headers?.get('x-request-id') ?? undefined;
    const summary = p ? `${p.status} ${p.title}${p.detail ? `: ${p.detail}` : ''}` : `HTTP ${status}`;
    super(requestId ? `${summary} (request id ${requestId})` : summary);
    this.name = 'PaymentsApiError';
    this.status = status;
    this.problem = p;
    this.requestId = requestId;
    this.retryAfter = retryAfterSeconds(headers?.get('retry-after')) ?? p?.retry_after;
  }

  /** Stable machine-readable code (Stripe's where Stripe produced the error). */
  get code(): string | undefined {
    return this.problem?.code;
  }
}

/** `Retry-After` as seconds: delta-seconds or an HTTP date. */
function retryAfterSeconds(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

export class RefundWaitTimeoutError extends Error {
  constructor(
    readonly requestId: string,
    /** The last status read, if any (none when the service never answered, or never confirmed queuing it). */
    readonly last: RefundStatus | undefined,
    /** The failure of the last try, when it failed (a PaymentsApiError, a network error). */
    cause?: unknown,
  ) {
    super(
      `refund ${requestId} is still ${last?.status ?? 'unknown'} after the wait timed out`,
      cause === undefined ? undefined : { cause },
    );
    this.name = 'RefundWaitTimeoutError';
  }
}

function isProblem(value: unknown): value is Problem {
  return typeof value === 'object' && value !== null && 'status' in value && 'title' in value;
}

/**
 * Request options that send `Idempotency-Key`: `client.POST('/refund', { body, ...withIdempotencyKey(key) })`.
 * Keep the key and send it again when retrying the same request, so the service answers the first
 * result instead of moving money twice. Without a key, a random UUID is used.
 */
export function withIdempotencyKey(key: string = globalThis.crypto.randomUUID()): {
  headers: { 'Idempotency-Key': string };
} {
  return { headers: { 'Idempotency-Key': key } };
}

/** Returns the data of an openapi-fetch result, or throws PaymentsApiError for an error answer. */
export async function unwrap<D>(
  result: Promise<{ data?: D; error?: unknown; response: Response }>,
): Promise<NonNullable<D>> {
  const { data, error, response } = await result;
  if (error !== undefined || !response.ok) {
    throw new PaymentsApiError(response.status, error, response.headers);
  }
  return data as NonNullable<D>;
}

// Worth another try while waiting: the answer may change once Stripe or the network recovers.
const TRANSIENT = new Set([408, 425, 429, 500, 502, 503, 504]);
/** The least time one request is given, however little is left of timeoutMs. */
const MIN_REQUEST_MS = 1_000;

/** An answer worth asking again: transient, or a 409 "still in progress" (which comes with Retry-After). */
function worthRetrying(err: PaymentsApiError): boolean {
  return TRANSIENT.has(err.status) || (err.status === 409 && err.retryAfter !== undefined);
}

/** A dropped connection or a request cut off by our own deadline (not the caller's signal). */
function isNetworkError(err: unknown): boolean {
  return err instanceof TypeError || (err instanceof Error && err.name === 'TimeoutError');
}

/** The wait before the next try: the interval, or longer when the service said so. */
function nextDelay(interval: number, err: unknown): number {
  const seconds = err instanceof PaymentsApiError ? err.retryAfter : undefined;
  return Math.max(interval, (seconds ?? 0) * 1000);
}

/** A signal for one request: the caller's, and cut off at the deadline (at least MIN_REQUEST_MS from now). */
function requestSignal(deadline: number, signal: AbortSignal | undefined): AbortSignal {
  const timeout = AbortSignal.timeout(Math.max(deadline - Date.now(), MIN_REQUEST_MS));
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A request id the service accepts (letters, digits, `-`): one per logical refund, kept across retries. */
function newRequestId(): string {
  return `client-${globalThis.crypto.randomUUID()}`;
}

export function createPaymentsClient(options: PaymentsClientOptions): PaymentsClient {
  const client = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.apiKey ? { headers: { Authorization: `Bearer ${options.apiKey}` } } : {}),
  });

  async function waitForRefund(
    requestId: string,
    opts: WaitOptions,
    deadline: number,
  ): Promise<RefundStatus> {
    const interval = opts.intervalMs ?? 500;
    let last: RefundStatus | undefined;
    for (;;) {
      let failure: unknown;
      try {
        const { data, error, response } = await client.GET('/refund-status/{request_id}', {
          params: { path: { request_id: requestId } },
          signal: requestSignal(deadline, opts.signal),
        });
        if (data) {
          last = data;
          if (FINAL_REFUND_STATES.includes(data.status)) return data;
        } else {
          failure = new PaymentsApiError(response.status, error, response.headers);
          if (!TRANSIENT.has(response.status)) throw failure;
        }
      } catch (err) {
        // A dropped connection is as transient as a 503; anything else (404, 401, the caller's abort) ends the wait.
        if (opts.signal?.aborted) throw opts.signal.reason;
        if (err instanceof PaymentsApiError || !isNetworkError(err)) throw err;
        failure = err;
      }
      const delay = nextDelay(interval, failure);
      if (Date.now() + delay > deadline) throw new RefundWaitTimeoutError(requestId, last, failure);
      await sleep(delay, opts.signal);
    }
  }

  async function refundAndWait(
    request: string | CreateRefundAsyncRequest,
    opts: RefundAndWaitOptions = {},
  ): Promise<RefundStatus> {
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    if (typeof request === 'string') return waitForRefund(request, opts, deadline);
    // One logical refund, one identity across retries: the caller's request_id or Idempotency-Key, else a
    // request_id chosen here (a retry without either would be a second refund).
    const body: CreateRefundAsyncRequest =
      request.request_id || opts.idempotencyKey ? request : { ...request, request_id: newRequestId() };
    const interval = opts.intervalMs ?? 500;
    let queued: string | undefined;
    while (queued === undefined) {
      let failure: unknown;
      try {
        const { data, error, response } = await client.POST('/refund-async', {
          body,
          ...(opts.idempotencyKey ? withIdempotencyKey(opts.idempotencyKey) : {}),
          signal: requestSignal(deadline, opts.signal),
        });
        if (data) {
          queued = data.request_id;
          break;
        }
        failure = new PaymentsApiError(response.status, error, response.headers);
        if (!worthRetrying(failure as PaymentsApiError)) throw failure;
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        if (err instanceof PaymentsApiError || !isNetworkError(err)) throw err;
        // No answer: the refund may or may not be queued; sending the same request again finds out.
        failure = err;
      }
      const delay = nextDelay(interval, failure);
      if (Date.now() + delay > deadline) {
        // Not known to be queued. With a request_id the caller can check or send it again; with only an
        // Idempotency-Key, sending it again with that key is the way to find out.
        if (body.request_id) throw new RefundWaitTimeoutError(body.request_id, undefined, failure);
        throw failure;
      }
      await sleep(delay, opts.signal);
    }
    return waitForRefund(queued, opts, deadline);
  }

  return Object.assign(client, { refundAndWait, withIdempotencyKey });
}
