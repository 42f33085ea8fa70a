/**
 * Liveness and readiness. Readiness asks each dependency with a short timeout and caches Stripe's answer
 * briefly, so frequent probes never become load on Stripe.
 */
import type { Broker } from '../queue/index.js';
import type { Store } from '../store/index.js';
import type { StripeClient } from '../stripe/client.js';

export type CheckState = 'ok' | 'down' | 'not_configured';

export interface Readiness {
  status: 'ok' | 'unavailable';
  /** Down, and this process cannot do its work without them: not ready. */
  failing?: string[];
  /** Down, but this process does its work without them meanwhile: still ready. */
  degraded?: string[];
  checks: Record<string, CheckState>;
}

export interface ReadinessDeps {
  store: Store;
  broker: Broker;
  stripe: StripeClient;
  timeoutMs?: number;
  stripeCacheMs?: number;
  /**
   * Checks that do not make the process unready when down. `broker` in a process that serves the API: POST
   * /refund-async keeps accepting refunds into the outbox, durably, and the rest of the API never needs RabbitMQ;
   * taking every API process out of its load balancer for a RabbitMQ outage would stop payments for nothing.
   */
  optional?: readonly string[];
}

/** The answer for `checks`: not ready while a check this process needs is down. */
function readinessOf(checks: Record<string, CheckState>, optional: readonly string[]): Readiness {
  const down = Object.keys(checks).filter((k) => checks[k] === 'down');
  const failing = down.filter((k) => !optional.includes(k));
  const degraded = down.filter((k) => optional.includes(k));
  return {
    status: failing.length === 0 ? 'ok' : 'unavailable',
    ...(failing.length > 0 ? { failing } : {}),
    ...(degraded.length > 0 ? { degraded } : {}),
    checks,
  };
}

async function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Readiness of a process that runs the refund worker: its `broker` is also down while the worker is not
 * subscribed to the refund queue (not yet started, being subscribed again after RabbitMQ cancelled it or closed
 * its channel, stopping). A live connection alone does not say so: a worker whose subscription keeps failing on
 * it refunds nothing.
 */
export function withWorkerSubscription(
  readiness: () => Promise<Readiness>,
  subscribed: () => boolean,
  optional: readonly string[] = [],
): () => Promise<Readiness> {
  return async () => {
    const r = await readiness();
    if (subscribed() || r.checks['broker'] === 'down') return r;
    return readinessOf({ ...r.checks, broker: 'down' }, optional);
  };
}

export function createReadiness(deps: ReadinessDeps): () => Promise<Readiness> {
  const timeoutMs = deps.timeoutMs ?? 2000;
  const cacheMs = deps.stripeCacheMs ?? 5000;
  const optional = deps.optional ?? [];
  let stripeCache: { at: number; state: CheckState } | null = null;

  async function stripeState(): Promise<CheckState> {
    if (stripeCache && Date.now() - stripeCache.at < cacheMs) return stripeCache.state;
    let state: CheckState;
    try {
      await within(
        deps.stripe.paymentIntents.list({ limit: 1 }, { maxNetworkRetries: 0, timeout: timeoutMs }),
        timeoutMs,
      );
      state = 'ok';
    } catch {
      state = 'down';
    }
    stripeCache = { at: Date.now(), state };
    return state;
  }

  return async () => {
    const [store, stripe] = await Promise.all([
      within(deps.store.ping(), timeoutMs).then(
        () => 'ok' as const,
        () => 'down' as const,
      ),
      stripeState(),
    ]);
    const broker: CheckState =
      deps.broker.kind === 'memory' ? 'not_configured' : deps.broker.isConnected() ? 'ok' : 'down';
    return readinessOf({ store, broker, stripe }, optional);
  };
}
