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
  failing?: string[];
  checks: Record<string, CheckState>;
}

export interface ReadinessDeps {
  store: Store;
  broker: Broker;
  stripe: StripeClient;
  timeoutMs?: number;
  stripeCacheMs?: number;
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
): () => Promise<Readiness> {
  return async () => {
    const r = await readiness();
    if (subscribed() || r.checks['broker'] === 'down') return r;
    const checks: Record<string, CheckState> = { ...r.checks, broker: 'down' };
    const failing = Object.entries(checks)
      .filter(([, v]) => v === 'down')
      .map(([k]) => k);
    return { status: 'unavailable', failing, checks };
  };
}

export function createReadiness(deps: ReadinessDeps): () => Promise<Readiness> {
  const timeoutMs = deps.timeoutMs ?? 2000;
  const cacheMs = deps.stripeCacheMs ?? 5000;
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
    const checks = { store, broker, stripe };
    const failing = Object.entries(checks)
      .filter(([, v]) => v === 'down')
      .map(([k]) => k);
    return failing.length === 0 ? { status: 'ok', checks } : { status: 'unavailable', failing, checks };
  };
}
