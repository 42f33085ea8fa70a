import { hashKey } from '../../auth/api-keys.js';
import type { Metrics } from '../../ops/metrics.js';
import type { Readiness } from '../../ops/health.js';
import type { Handlers } from '../operations.js';
import { ProblemError } from '../problem.js';
import { UNAUTHENTICATED_DETAIL } from '../security.js';

export interface OpsDeps {
  readiness: () => Promise<Readiness>;
  metrics: Metrics;
  /** When false, /metrics needs a secret API key of any scope (a publishable key is refused). */
  metricsPublic: boolean;
}

/**
 * With METRICS_PUBLIC=false, how long a secret key that was last checked on a scrape is let in again while the
 * database cannot check it. A scrape's key is looked up in the database, so every scrape answered 503 while it did
 * not answer, and Prometheus lost every figure (HTTP, Stripe, RabbitMQ) when they mattered most. A key revoked
 * meanwhile is refused once the database answers again.
 */
export const SCRAPER_KEY_REMEMBERED_MS = 15 * 60_000;
/** Scrapers are few: the keys remembered are at most these many, the least recently checked forgotten first. */
const SCRAPER_KEYS_REMEMBERED = 16;

function bearerKeyOf(headers: Record<string, unknown>): string | undefined {
  const value = headers['authorization'];
  return typeof value === 'string' ? /^Bearer +([^\s]+) *$/i.exec(value)?.[1] : undefined;
}

export const opsHandlers = (deps: OpsDeps) => {
  /** Hashes of secret keys a scrape was let in with, and when their lookup last found them active. */
  const scraperKeys = new Map<string, number>();
  const rememberScraper = (key: string) => {
    const hash = hashKey(key);
    scraperKeys.delete(hash);
    scraperKeys.set(hash, Date.now());
    if (scraperKeys.size > SCRAPER_KEYS_REMEMBERED) scraperKeys.delete(scraperKeys.keys().next().value!);
  };
  const rememberedScraper = (key: string) => {
    const at = scraperKeys.get(hashKey(key));
    return at !== undefined && Date.now() - at < SCRAPER_KEY_REMEMBERED_MS;
  };
  return {
    async getHealth() {
      return { status: 200, body: { status: 'ok' } };
    },

    async getReadiness() {
      const r = await deps.readiness();
      return r.status === 'ok' ? { status: 200, body: r } : { status: 503, body: r };
    },

    async getMetrics({ ctx, headers }) {
      if (!deps.metricsPublic) {
        const key = bearerKeyOf(headers as Record<string, unknown>);
        if (ctx.caller.keyId !== null) {
          if (key !== undefined && ctx.caller.kind !== 'publishable') rememberScraper(key);
        } else if (ctx.keyCheckFailure !== undefined) {
          // A key was sent but could not be checked (the database did not answer): that, not a missing key, unless
          // it is a scraper's key found active a moment ago.
          if (key === undefined || !rememberedScraper(key)) throw ctx.keyCheckFailure;
        } else {
          throw new ProblemError(401, UNAUTHENTICATED_DETAIL, {
            code: 'unauthenticated',
            headers: { 'WWW-Authenticate': 'Bearer' },
          });
        }
      }
      return {
        status: 200,
        body: await deps.metrics.render(),
        headers: { 'content-type': deps.metrics.registry.contentType },
      };
    },
  } satisfies Partial<Handlers>;
};
