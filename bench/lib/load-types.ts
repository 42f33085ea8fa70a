/** What the orchestrator asks of a load child, and what it gets back. */
export type LoadKind = 'create-payment-intent' | 'get-payment-intent' | 'refund-async' | 'refund-status';

export interface LoadSpec {
  url: string;
  kind: LoadKind;
  connections: number;
  durationSec: number;
  /** Fixed number of requests instead of a duration (fills the queue for the drain runs). */
  amount?: number;
  /** Payment intent ids (get-payment-intent, refund-async) or request ids (refund-status), used round-robin. */
  ids?: string[];
  /** refund-async: request ids are `<idPrefix>-<n>`. */
  idPrefix?: string;
  /** refund-async: where the request ids of the 202 answers are written, one a line. */
  acceptedFile?: string;
  /** Where every response time (ms, float64) is written. */
  latencyFile?: string;
  headers?: Record<string, string>;
  /** Statuses that count as served (everything else is an error for the figures). */
  expectStatus: number[];
}

export interface LoadOutput {
  durationSec: number;
  requests: number;
  ok: number;
  okPerSec: number;
  statuses: Record<string, number>;
  errors: number;
  timeouts: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  accepted: number;
  /** CPU the generator itself used (user + system, all its threads) while it ran, µs. */
  cpuUs: number;
}
