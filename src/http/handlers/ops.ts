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

export const opsHandlers = (deps: OpsDeps) =>
  ({
    async getHealth() {
      return { status: 200, body: { status: 'ok' } };
    },

    async getReadiness() {
      const r = await deps.readiness();
      return r.status === 'ok' ? { status: 200, body: r } : { status: 503, body: r };
    },

    async getMetrics({ ctx }) {
      if (!deps.metricsPublic && ctx.caller.keyId === null) {
        // A key was sent but could not be checked (the database did not answer): that, not a missing key.
        if (ctx.keyCheckFailure !== undefined) throw ctx.keyCheckFailure;
        throw new ProblemError(401, UNAUTHENTICATED_DETAIL, {
          code: 'unauthenticated',
          headers: { 'WWW-Authenticate': 'Bearer' },
        });
      }
      return {
        status: 200,
        body: await deps.metrics.render(),
        headers: { 'content-type': deps.metrics.registry.contentType },
      };
    },
  }) satisfies Partial<Handlers>;
