/**
 * The HTTP face of a worker process: health, readiness and metrics only (see buildOpsApp). Kept apart
 * from app.ts so a worker never loads the contract validator or Swagger UI.
 */
import express, { type Express, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { ApiKeysRepo } from '../store/index.js';
import type { AppDeps } from './app.js';
import { contextOf, sendReply } from './dispatch.js';
import { errorHandler } from './errors.js';
import type { Handlers } from './operations.js';
import { ProblemError } from './problem.js';
import { requestLog } from './request-log.js';
import { originForm, requireHost, routedPath } from './request-target.js';
import { apiKeySecurity, authFailureLimit, securityHeaders } from './security.js';

export interface OpsAppDeps {
  logger: Logger;
  handlers: Pick<Handlers, 'getHealth' | 'getReadiness' | 'getMetrics'>;
  /** When given (auth on), a Bearer key on /metrics is checked, as the API's optional ApiKey security does. */
  apiKeys?: ApiKeysRepo;
  /** AUTH_FAILURES_PER_MINUTE: keys refused per minute per client address before it needs a known key (0: none). */
  authFailuresPerMinute?: number;
  onResponse?: AppDeps['onResponse'];
  hostCheck?: AppDeps['hostCheck'];
  /** TRUST_PROXY, as the API takes it: the proxies whose X-Forwarded-For names the client (0: none). */
  trustProxy?: number;
}

/**
 * A worker process (ROLE=worker) serves only what its operators need: /healthz, /readyz and /metrics,
 * answered by the same handlers as the API's. It neither loads nor compiles the contract's validators, so
 * it starts sooner and uses less memory; every other path is a 404 that says where the API runs.
 */
export function buildOpsApp(deps: OpsAppDeps): Express {
  const app = express();
  // Case-sensitive as the API's (see buildApp): /HEALTHZ is no probe here either.
  app.set('case sensitive routing', true);
  app.disable('x-powered-by');
  app.set('etag', false);
  // As the API (buildApp): behind a proxy, the client's address (per-address limits, logs) is the one it names.
  app.set('trust proxy', (deps.trustProxy ?? 0) > 0 ? deps.trustProxy : false);
  app.use(requestLog(deps.logger, deps.onResponse));
  app.use(requireHost);
  app.use(originForm);
  app.use(securityHeaders());
  if (deps.hostCheck) app.use(deps.hostCheck);
  // As on the API (see authFailureLimit): a key tried on /metrics is a lookup in the store, answered 200 as a
  // scrape without one when it is refused. Without the limit anyone could try keys here as fast as it answered.
  const failureLimit = deps.apiKeys
    ? authFailureLimit(deps.authFailuresPerMinute ?? 0, (req) =>
        routedPath(req.path) === '/metrics' ? 'optional' : 'none',
      )
    : null;
  if (failureLimit) app.use(failureLimit.middleware);
  const security = deps.apiKeys
    ? apiKeySecurity({
        apiKeys: deps.apiKeys,
        ...(failureLimit ? { onAuthenticated: failureLimit.authenticated } : {}),
      })
    : null;
  const route =
    (operationId: keyof OpsAppDeps['handlers']): RequestHandler =>
    async (req, res, next) => {
      try {
        // Where the validator would have put it: request logs and metrics label by operationId.
        (req as { openapi?: unknown }).openapi = { schema: { operationId } };
        // The contract names no query parameter on these: the API's validator refuses the first unknown one with a
        // 400 (a probe or scraper misconfigured against a worker would otherwise pass here and fail on the API).
        const unknown = Object.keys(req.query as object)[0];
        if (unknown !== undefined) {
          next(
            Object.assign(new Error('Bad Request'), {
              status: 400,
              errors: [{ path: `/query/${unknown}`, message: `Unknown query parameter '${unknown}'` }],
            }),
          );
          return;
        }
        // /metrics accepts no key or a valid one ({} or ApiKey); an invalid key leaves the caller anonymous.
        if (security && operationId === 'getMetrics' && req.get('authorization')) {
          await security.ApiKey(req, []).catch(() => false);
        }
        const reply = await deps.handlers[operationId]({
          body: undefined as never,
          query: {} as never,
          path: {} as never,
          headers: req.headers as never,
          ctx: contextOf(req),
        });
        sendReply(res, reply);
      } catch (err) {
        next(err);
      }
    };
  app.get('/healthz', route('getHealth'));
  app.get('/readyz', route('getReadiness'));
  app.get('/metrics', route('getMetrics'));
  // Another method on a probe's path is the API's 405 naming GET (HEAD is a GET: the routes above answer it), not
  // the catch-all's 404 saying the path is served elsewhere.
  app.all(['/healthz', '/readyz', '/metrics'], (req, _res, next) => {
    next(
      new ProblemError(405, `${req.method} is not allowed on ${req.path}.`, { headers: { Allow: 'GET' } }),
    );
  });
  app.use((req, _res, next) => {
    next(
      new ProblemError(
        404,
        `No operation at ${req.method} ${req.path}: this process only runs the refund worker (ROLE=worker); the API is served by ROLE=api or ROLE=all processes.`,
      ),
    );
  });
  app.use(errorHandler);
  return app;
}
