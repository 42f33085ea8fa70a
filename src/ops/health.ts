/**
 * Liveness and readiness. Readiness asks each dependency with a short timeout and caches Stripe's answer
 * briefly, so frequent probes never become load on Stripe.
 */
import type { Logger } from 'pino';
import type { Broker } from '../queue/index.js';
import type { Store } from '../store/index.js';
import { StoreUnavailableError } from '../store/errors.js';
import type { ReadOnlyBecause } from '../store/store.js';
import type { StripeClient } from '../stripe/client.js';

export type CheckState = 'ok' | 'down' | 'not_configured';

export interface Readiness {
  status: 'ok' | 'unavailable';
  /** Down, and this process cannot do its work without them: not ready. */
  failing?: string[];
  /** Down, but this process does its work without them meanwhile: still ready. */
  degraded?: string[];
  checks: Record<string, CheckState>;
  /**
   * Why each check that is down is down (failing or degraded), for an operator reading the probe's answer: a fixed
   * phrase per known cause, never an error's own text (a driver's or the SDK's may name hosts, users or keys).
   */
  reasons?: Record<string, string>;
}

/** What `reasons` says: fixed phrases only, the answer is given to anyone who asks. */
export const REASONS = {
  storeTimeout: 'the database did not answer in time',
  storeStandby: 'the database refuses writes (a standby in recovery, not the primary)',
  storeReadOnlySetting: 'the database refuses writes (default_transaction_read_only is on)',
  storeReadOnly: 'the database refuses writes (read-only)',
  storeUnavailable: 'the database cannot be reached or refuses connections',
  storeFailed: 'the database check failed (the log says why)',
  brokerDisconnected: 'RabbitMQ is not connected',
  workerUnsubscribed: 'the worker is not subscribed to the refund queue',
  stripeKeyRefused: "Stripe refuses this process's key (STRIPE_SECRET_KEY)",
  stripeKeyRestricted:
    "Stripe refuses this process's key the access the check needs (a restricted STRIPE_SECRET_KEY?)",
  stripeTimeout: 'Stripe did not answer in time',
  stripeRateLimited: 'Stripe is rate limiting this account',
  stripeServerError: 'Stripe answers with server errors',
  stripeUnreachable: 'Stripe cannot be reached',
  stripeFailed: 'Stripe refuses the check',
} as const;

export interface ReadinessDeps {
  store: Store;
  broker: Broker;
  stripe: StripeClient;
  timeoutMs?: number;
  stripeCacheMs?: number;
  /**
   * Checks that do not make the process unready when down. In a process that serves the API:
   * - `broker`: POST /refund-async keeps accepting refunds into the outbox, durably, and the rest of the API never
   *   needs RabbitMQ; taking every API process out of its load balancer for a RabbitMQ outage would stop payments
   *   for nothing.
   * - `stripe`: every process shares the one Stripe, so an outage of it is no reason to route around this one;
   *   taking them all out would also stop what works without Stripe (webhooks, refund status, queued refunds),
   *   and turn each payment's clear 502/503 problem into a load balancer's bare error. Stripe refusing this
   *   process's key (401/403) is this deployment's own fault, so it still makes the process unready: a rollout
   *   with a wrong STRIPE_SECRET_KEY stops at its first process.
   */
  optional?: readonly string[];
  /**
   * Told when the store check goes down (with the error: no answer in time, the database unreachable, or refusing
   * writes) and when it is back; the answer itself says why in a fixed phrase (`reasons`), never the error's text.
   */
  logger?: Logger;
}

/** The answer for `checks`: not ready while a check this process needs is down. `why`: a reason per check down. */
function readinessOf(
  checks: Record<string, CheckState>,
  optional: readonly string[],
  why: Record<string, string | undefined>,
): Readiness {
  const down = Object.keys(checks).filter((k) => checks[k] === 'down');
  const failing = down.filter((k) => !optional.includes(k));
  const degraded = down.filter((k) => optional.includes(k));
  const reasons = Object.fromEntries(down.map((k) => [k, why[k] ?? `${k} is down`]));
  return {
    status: failing.length === 0 ? 'ok' : 'unavailable',
    ...(failing.length > 0 ? { failing } : {}),
    ...(degraded.length > 0 ? { degraded } : {}),
    checks,
    ...(down.length > 0 ? { reasons } : {}),
  };
}

/**
 * How long a probe waits for Stripe's fresh answer when it has an earlier one to give (see stripeCheck): well under a
 * probe's usual 1 s timeout, and long enough for a Stripe that answers, even with an error, to be heard at once.
 */
const STRIPE_STALE_AFTER_MS = 500;

/** Raised by `within` when the answer is late (told apart from a dependency's own errors by identity). */
class CheckTimeout extends Error {}

/** SQLSTATE read_only_sql_transaction: PostgreSQL's refusal of a write, and what ping() says it would meet. */
const PG_READ_ONLY = '25006';

/** The refusal of writes among an error's causes: ping()'s finding, or PostgreSQL's own refusal of a write. */
function readOnlyRefusal(err: unknown): { readOnlyBecause?: ReadOnlyBecause } | undefined {
  let e: unknown = err;
  // Bounded: a cause chain may loop.
  for (let depth = 0; depth < 8 && typeof e === 'object' && e !== null; depth += 1) {
    const { code, cause } = e as { code?: unknown; cause?: unknown };
    if (code === PG_READ_ONLY) return e as { readOnlyBecause?: ReadOnlyBecause };
    e = cause;
  }
  return undefined;
}

/**
 * Why the store check failed. A database refusing writes is told by the SQLSTATE its error carries and, for ping()'s
 * finding, what made the database read-only: never by a message, which a PostgreSQL with other lc_messages words in
 * its own language. Nothing of any message reaches the answer.
 */
export function storeReason(err: unknown): string {
  if (err instanceof CheckTimeout) return REASONS.storeTimeout;
  if (!(err instanceof StoreUnavailableError)) return REASONS.storeFailed;
  const refusal = readOnlyRefusal(err);
  if (!refusal) return REASONS.storeUnavailable;
  if (refusal.readOnlyBecause === 'recovery') return REASONS.storeStandby;
  if (refusal.readOnlyBecause === 'transaction_read_only') return REASONS.storeReadOnlySetting;
  return REASONS.storeReadOnly;
}

function stripeReason(err: unknown): string {
  if (err instanceof CheckTimeout) return REASONS.stripeTimeout;
  const e = err as { statusCode?: unknown; type?: unknown } | null;
  const status = e?.statusCode;
  if (status === 401) return REASONS.stripeKeyRefused;
  if (status === 403) return REASONS.stripeKeyRestricted;
  if (status === 429) return REASONS.stripeRateLimited;
  if (typeof status === 'number' && status >= 500) return REASONS.stripeServerError;
  // The SDK's own timeout (the same as the check's) says so in its message; matched, never repeated.
  if (e?.type === 'StripeConnectionError') {
    return /timeout|timed out/i.test(String((err as Error).message))
      ? REASONS.stripeTimeout
      : REASONS.stripeUnreachable;
  }
  return REASONS.stripeFailed;
}

interface StripeCheck {
  at: number;
  state: CheckState;
  /** Stripe answered, refusing this process's key (401) or its permissions (403). */
  refused: boolean;
  reason?: string;
}

function refusesKey(err: unknown): boolean {
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  return status === 401 || status === 403;
}

async function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new CheckTimeout('timeout')), ms);
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
    return readinessOf({ ...r.checks, broker: 'down' }, optional, {
      ...r.reasons,
      broker: REASONS.workerUnsubscribed,
    });
  };
}

export function createReadiness(deps: ReadinessDeps): () => Promise<Readiness> {
  const timeoutMs = deps.timeoutMs ?? 2000;
  const cacheMs = deps.stripeCacheMs ?? 5000;
  const optional = deps.optional ?? [];
  let stripeCache: StripeCheck | null = null;
  /**
   * The question under way, which every probe arriving meanwhile waits for. /readyz is answered to anyone, uncapped
   * and never rate limited: each probe of a burst asked Stripe again until the first answer came, and so spent the
   * account's rate limit (with this process's key) that payments and refunds need.
   */
  let stripeAsking: Promise<StripeCheck> | null = null;

  function stripeCheck(): Promise<StripeCheck> {
    if (stripeCache && Date.now() - stripeCache.at < cacheMs) return Promise.resolve(stripeCache);
    stripeAsking ??= askStripe().finally(() => {
      stripeAsking = null;
    });
    // With an answer to give, a probe waits for Stripe's fresh one only briefly, then gives the last one: waiting out
    // a Stripe that does not answer (timeoutMs) made every probe past the cache time out at a 1 s probe timeout
    // (Kubernetes' default), and so took every API process out of its load balancer, which a Stripe outage must not.
    // The question goes on; its answer is cached and given as soon as it is in.
    const last = stripeCache;
    if (!last) return stripeAsking;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<StripeCheck>((resolve) => {
      timer = setTimeout(() => resolve(last), STRIPE_STALE_AFTER_MS);
    });
    return Promise.race([stripeAsking, late]).finally(() => clearTimeout(timer));
  }

  async function askStripe(): Promise<StripeCheck> {
    let check: StripeCheck;
    try {
      await within(
        deps.stripe.paymentIntents.list({ limit: 1 }, { maxNetworkRetries: 0, timeout: timeoutMs }),
        timeoutMs,
      );
      check = { at: Date.now(), state: 'ok', refused: false };
    } catch (err) {
      check = { at: Date.now(), state: 'down', refused: refusesKey(err), reason: stripeReason(err) };
    }
    stripeCache = check;
    return check;
  }

  /** The store check's last state, so each change is logged once, not on every probe. */
  let storeWas: CheckState = 'ok';
  function storeState(state: CheckState, err?: unknown): CheckState {
    if (state !== storeWas) {
      if (state === 'down') {
        deps.logger?.warn(
          { reason: err instanceof Error ? err.message : String(err) },
          'readiness: store down',
        );
      } else deps.logger?.info('readiness: store back');
    }
    storeWas = state;
    return state;
  }

  /**
   * The ping under way, which every probe arriving meanwhile waits for (each up to its own timeout). Each probe
   * pinged on its own: a burst of anonymous probes took as many connections of the pool that requests use, each
   * held as long as a slow database took, and queued the rest of them behind the pool (so they timed out, and the
   * process read as unready because it was probed). Kept until the ping settles, not until a probe gives up on it,
   * so a database that does not answer has one ping waiting on it at a time (DATABASE_TIMEOUT_MS bounds it).
   */
  let storePinging: Promise<void> | null = null;
  function storePing(): Promise<void> {
    storePinging ??= deps.store.ping().finally(() => {
      storePinging = null;
    });
    return storePinging;
  }

  return async () => {
    let storeWhy: string | undefined;
    const [store, stripe] = await Promise.all([
      within(storePing(), timeoutMs).then(
        () => storeState('ok'),
        (err: unknown) => {
          storeWhy = storeReason(err);
          return storeState('down', err);
        },
      ),
      stripeCheck(),
    ]);
    // Every connection of the process: a worker's consuming one too.
    const connected =
      deps.broker.isConnected() && Object.values(deps.broker.connections?.() ?? {}).every(Boolean);
    const broker: CheckState = deps.broker.kind === 'memory' ? 'not_configured' : connected ? 'ok' : 'down';
    return readinessOf(
      { store, broker, stripe: stripe.state },
      stripe.refused ? optional.filter((k) => k !== 'stripe') : optional,
      { store: storeWhy, broker: REASONS.brokerDisconnected, stripe: stripe.reason },
    );
  };
}
