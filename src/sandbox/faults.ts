export interface FaultMatch {
  method?: string;
  path_prefix?: string;
}

export interface FaultConfig {
  /**
   * Share of requests answered 500 `api_error` before any processing: a failure in front of Stripe's
   * idempotency layer, so nothing is saved under an Idempotency-Key and a retry with it executes anew.
   */
  error_rate?: number;
  /**
   * Share of requests that fail with 500 `api_error` once the endpoint has begun executing (nothing is
   * changed). As on Stripe (https://docs.stripe.com/api/idempotent_requests), the 500 is saved under the
   * request's Idempotency-Key and every retry with that key gets the same 500 back until the key expires.
   */
  execution_error_rate?: number;
  /** Share of requests answered 429 before any processing. */
  rate_limit_rate?: number;
  /**
   * Share of requests answered 403 `permission_error` before any processing, as Stripe answers a restricted key
   * (`rk_...`) without the permission the endpoint needs: with `match`, a key that may read refunds but not make them.
   */
  permission_error_rate?: number;
  /**
   * Share of requests answered as Stripe answers one whose object another request holds: 429 `lock_timeout`, with
   * `Stripe-Should-Retry: true`, which the SDK follows (it retries this 429, as it retries no other).
   */
  lock_timeout_rate?: number;
  /** Requests per second above which requests are answered 429. */
  rate_limit_rps?: number;
  /** Extra processing time per request. */
  latency_ms?: number;
  /** Share of requests processed fully, then answered by destroying the socket. */
  drop_rate?: number;
  match?: FaultMatch;
}

export type FaultDecision = 'rate_limit' | 'lock_timeout' | 'permission' | 'error' | undefined;

const RATES = [
  'error_rate',
  'execution_error_rate',
  'rate_limit_rate',
  'lock_timeout_rate',
  'permission_error_rate',
  'drop_rate',
] as const;
const KEYS = new Set([
  'error_rate',
  'execution_error_rate',
  'rate_limit_rate',
  'lock_timeout_rate',
  'permission_error_rate',
  'rate_limit_rps',
  'latency_ms',
  'drop_rate',
  'match',
]);
const MAX_LATENCY_MS = 120_000;

/** Validates a control-API body; returns the config or a message saying what is wrong. */
export function parseFaultConfig(input: unknown): FaultConfig | string {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    return 'body must be a JSON object';
  const body = input as Record<string, unknown>;
  for (const key of Object.keys(body)) if (!KEYS.has(key)) return `unknown fault: ${key}`;
  const config: FaultConfig = {};
  for (const key of RATES) {
    const v = body[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1)
      return `${key} must be a number from 0 to 1`;
    config[key] = v;
  }
  const rps = body['rate_limit_rps'];
  if (rps !== undefined) {
    if (typeof rps !== 'number' || !Number.isFinite(rps) || rps <= 0)
      return 'rate_limit_rps must be a positive number';
    config.rate_limit_rps = rps;
  }
  const latency = body['latency_ms'];
  if (latency !== undefined) {
    if (typeof latency !== 'number' || !Number.isFinite(latency) || latency < 0 || latency > MAX_LATENCY_MS) {
      return `latency_ms must be a number from 0 to ${MAX_LATENCY_MS}`;
    }
    config.latency_ms = latency;
  }
  const match = body['match'];
  if (match !== undefined) {
    if (typeof match !== 'object' || match === null || Array.isArray(match)) return 'match must be an object';
    const m = match as Record<string, unknown>;
    for (const key of Object.keys(m))
      if (key !== 'method' && key !== 'path_prefix') return `unknown match key: ${key}`;
    config.match = {};
    if (m['method'] !== undefined) {
      if (typeof m['method'] !== 'string' || m['method'] === '') return 'match.method must be a string';
      config.match.method = m['method'].toUpperCase();
    }
    if (m['path_prefix'] !== undefined) {
      if (typeof m['path_prefix'] !== 'string') return 'match.path_prefix must be a string';
      config.match.path_prefix = m['path_prefix'];
    }
  }
  return config;
}

/** Decides, per API request, which injected fault (if any) applies. */
export class FaultInjector {
  private config: FaultConfig = {};
  private windowStart = 0;
  private windowCount = 0;

  constructor(private readonly random: () => number = Math.random) {}

  set(config: FaultConfig): void {
    this.config = config;
    this.windowStart = 0;
    this.windowCount = 0;
  }

  get(): FaultConfig {
    return this.config;
  }

  clear(): void {
    this.set({});
  }

  /** The config if it applies to this request, else undefined. */
  matching(method: string, path: string): FaultConfig | undefined {
    const c = this.config;
    if (
      c.error_rate === undefined &&
      c.execution_error_rate === undefined &&
      c.rate_limit_rate === undefined &&
      c.lock_timeout_rate === undefined &&
      c.permission_error_rate === undefined &&
      c.rate_limit_rps === undefined &&
      c.latency_ms === undefined &&
      c.drop_rate === undefined
    ) {
      return undefined;
    }
    if (c.match?.method !== undefined && c.match.method !== method) return undefined;
    if (c.match?.path_prefix !== undefined && !path.startsWith(c.match.path_prefix)) return undefined;
    return c;
  }

  /** Rejections that happen before a request is processed (and so are never stored). */
  decideBefore(config: FaultConfig, now = Date.now()): FaultDecision {
    if (config.rate_limit_rps !== undefined) {
      const window = Math.floor(now / 1000);
      if (window !== this.windowStart) {
        this.windowStart = window;
        this.windowCount = 0;
      }
      this.windowCount++;
      if (this.windowCount > config.rate_limit_rps) return 'rate_limit';
    }
    if (config.rate_limit_rate !== undefined && this.random() < config.rate_limit_rate) return 'rate_limit';
    if (config.lock_timeout_rate !== undefined && this.random() < config.lock_timeout_rate)
      return 'lock_timeout';
    if (config.permission_error_rate !== undefined && this.random() < config.permission_error_rate)
      return 'permission';
    if (config.error_rate !== undefined && this.random() < config.error_rate) return 'error';
    return undefined;
  }

  /** Whether this request, now executing, fails with a 500 (see `execution_error_rate`). */
  shouldFailExecution(config: FaultConfig): boolean {
    return config.execution_error_rate !== undefined && this.random() < config.execution_error_rate;
  }

  shouldDrop(config: FaultConfig): boolean {
    return config.drop_rate !== undefined && this.random() < config.drop_rate;
  }
}
