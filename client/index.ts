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

/** States a refund never leaves. */
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
  /** Give up after this long; default 60 s. */
  timeoutMs?: number;
  /** Delay between two status reads; default 500 ms. */
  intervalMs?: number;
  signal?: AbortSignal;
}

export interface RefundAndWaitOptions extends WaitOptions {
  /** Idempotency-Key for the POST /refund-async that queues the refund (a body is given). */
  idempotencyKey?: string;
}

export interface PaymentsClient extends Client<paths> {
  /**
   * Follows a queued refund until it reaches a final state (succeeded, failed or canceled) and
   * returns that ledger entry; a failed or canceled refund is returned, not thrown. Given a request
   * body instead of a request id, first queues it with POST /refund-async.
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

  constructor(status: number, problem: unknown) {
    const p = isProblem(problem) ? problem : undefined;
    super(p ? `${p.status} ${p.title}${p.detail ? `: ${p.detail}` : ''}` : `HTTP ${status}`);
    this.name = 'PaymentsApiError';
    this.status = status;
    this.problem = p;
  }

  /** Stable machine-readable code (Stripe's where Stripe produced the error). */
  get code(): string | undefined {
    return this.problem?.code;
  }
}

export class RefundWaitTimeoutError extends Error {
  constructor(
    readonly requestId: string,
    /** The last status read, if any. */
    readonly last: RefundStatus | undefined,
  ) {
    super(`refund ${requestId} is still ${last?.status ?? 'unknown'} after the wait timed out`);
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
  if (error !== undefined || !response.ok) throw new PaymentsApiError(response.status, error);
  return data as NonNullable<D>;
}

// Worth another read while waiting: the answer may change once Stripe or the network recovers.
const TRANSIENT = new Set([408, 425, 429, 500, 502, 503, 504]);

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

export function createPaymentsClient(options: PaymentsClientOptions): PaymentsClient {
  const client = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.apiKey ? { headers: { Authorization: `Bearer ${options.apiKey}` } } : {}),
  });

  async function waitForRefund(requestId: string, opts: WaitOptions): Promise<RefundStatus> {
    const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
    const interval = opts.intervalMs ?? 500;
    let last: RefundStatus | undefined;
    for (;;) {
      try {
        const { data, error, response } = await client.GET('/refund-status/{request_id}', {
          params: { path: { request_id: requestId } },
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        if (data) {
          last = data;
          if (FINAL_REFUND_STATES.includes(data.status)) return data;
        } else if (!TRANSIENT.has(response.status)) {
          throw new PaymentsApiError(response.status, error);
        }
      } catch (err) {
        // A dropped connection is as transient as a 503; anything else (404, 401, abort) ends the wait.
        if (err instanceof PaymentsApiError || opts.signal?.aborted || !(err instanceof TypeError)) throw err;
      }
      if (Date.now() + interval > deadline) throw new RefundWaitTimeoutError(requestId, last);
      await sleep(interval, opts.signal);
    }
  }

  async function refundAndWait(
    request: string | CreateRefundAsyncRequest,
    opts: RefundAndWaitOptions = {},
  ): Promise<RefundStatus> {
    if (typeof request === 'string') return waitForRefund(request, opts);
    const queued = await unwrap(
      client.POST('/refund-async', {
        body: request,
        ...(opts.idempotencyKey ? withIdempotencyKey(opts.idempotencyKey) : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      }),
    );
    return waitForRefund(queued.request_id, opts);
  }

  return Object.assign(client, { refundAndWait, withIdempotencyKey });
}
