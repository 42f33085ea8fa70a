/**
 * Builds the Express app without listening, so tests start it on port 0 and main.ts decides where it runs.
 */
import express, { type Express, type Request, type RequestHandler } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import swaggerUi from 'swagger-ui-express';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { ApiKeysRepo, IdempotencyRepo } from '../store/index.js';
import { admission, holdWork } from './admission.js';
import { contextOf, dispatch, sendReply, type DispatchOptions } from './dispatch.js';
import { errorHandler, notFound } from './errors.js';
import { ProblemError } from './problem.js';
import type { Handlers } from './operations.js';
import { requestLog } from './request-log.js';
import { originForm, requireHost, routedPath } from './request-target.js';
import { noteUnicodeEscapes, refuseLoneSurrogates } from './well-formed.js';
import { spellUtf8Charset } from './charset.js';
import { routeHeadAsGet } from './head.js';
import './validator-tuning.js';
import {
  apiKeySecurity,
  authenticateFirst,
  authFailureLimit,
  type AuthOptions,
  clientAddressKey,
  corsMiddleware,
  keyCheckFailures,
  keyOwner,
  keyRequirementOf,
  keyRequirements,
  type KeyRequirement,
  PAGE_PREFIXES,
  securityHeaders,
  rateLimitMiddleware,
  timeoutMiddleware,
  withoutValidKey,
  withPublishableKey,
} from './security.js';
import type { LoadedSpec } from './spec.js';

export interface AppDeps {
  config: Pick<Config, 'http'> & { auth?: Config['auth'] };
  logger: Logger;
  spec: LoadedSpec;
  handlers: Handlers;
  /** How replayed answers whose secrets were not kept are rebuilt (see Reply.replayBody). */
  replays?: DispatchOptions['replays'];
  /** Key lookups and Idempotency-Key storage; without them auth is off and Idempotency-Key is ignored. */
  store?: { apiKeys: ApiKeysRepo; idempotency: IdempotencyRepo };
  /** Routes mounted before the contract and outside authentication (health, metrics, demo pages). */
  extraRoutes?: (app: Express) => void;
  /** Refuses requests naming another host than a loopback name while the server listens on loopback. */
  hostCheck?: RequestHandler;
  /** Observes every finished request (metrics). */
  onResponse?: (info: { operationId: string | undefined; status: number; seconds: number }) => void;
  /** Told when each request's work begins and ends (see DispatchOptions.onWork). */
  onWork?: DispatchOptions['onWork'];
}

const WEBHOOK_BODY_LIMIT = '512kb';

/**
 * Webhook bodies are read whole before their signature can be checked, so anyone can make the process hold one:
 * 900 connections each sending most of a 512 kB body held 500 MB (buffers, outside the heap limit) until the
 * request timeout. Stripe delivers to an endpoint a few at a time and retries a 503 for days.
 */
export const MAX_WEBHOOKS_IN_PROGRESS = 64;

/**
 * Of those, how many one client address may hold: half. Anyone can send a webhook request: 64 bodies sent slowly
 * from one client took every place, and Stripe's deliveries were answered 503 for as long as it kept them open.
 * Stripe sends from many addresses, and a request of its is done in milliseconds once its body is in, so a burst
 * from one address rarely holds more than a few places (the sandbox delivers at most 16 at once); behind a proxy
 * without TRUST_PROXY every request has the proxy's address, and half the places is then what anyone gets.
 */
export const MAX_WEBHOOKS_PER_CLIENT = MAX_WEBHOOKS_IN_PROGRESS / 2;

const PUBLISHABLE_FULL =
  'The service is at its limit of requests in progress with publishable keys. Retry shortly.';

const OWNER_FULL = "This owner's API keys are at their limit of requests in progress. Retry shortly.";

/** Whose share of the places a request holds: its key's owner's, a publishable key's apart (owners have no space). */
function ownerShareOf(req: Request): string | undefined {
  const owner = keyOwner(req);
  if (owner === undefined) return undefined;
  return withPublishableKey(req) ? `${owner} publishable` : owner;
}

/** Never refused by the cap on requests at work: a busy process must still look alive to its orchestrator. */
const UNCAPPED_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics']);

/** Served before the contract's operations, to anyone: the contract itself, Swagger UI and the demo pages. */
const DOCUMENT_PATHS: ReadonlySet<string> = new Set(['/openapi.json', '/openapi-3.0.json', '/openapi.yaml']);

const servedWithoutKey = (path: string) =>
  DOCUMENT_PATHS.has(path) || PAGE_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`));

/**
 * The contract's servers name where the service runs by default (http://127.0.0.1:5000). "Try it out" sends its
 * requests to the first of them, so the page opened anywhere else (http://localhost:5000, a container, another
 * port) called an origin its own policy (connect-src 'self') forbids, and every try failed. The page's copy
 * lists the service that served it first.
 */
function docsDocument(document: Record<string, unknown>): Record<string, unknown> {
  const servers = Array.isArray(document.servers) ? (document.servers as unknown[]) : [];
  return {
    ...document,
    servers: [{ url: '/', description: 'This service' }, ...servers],
    components: withoutIdempotencyKeyExample(document.components),
  };
}

/**
 * "Try it out" fills an optional header with its example, so every POST tried from the page sent the contract's one
 * Idempotency-Key: a second try got the first one's stored answer (the same, maybe already paid, checkout session)
 * and a try with another body was refused with 422. Without the example the field starts empty and is not sent.
 */
function withoutIdempotencyKeyExample(components: unknown): unknown {
  const parameters = (components as { parameters?: Record<string, Record<string, unknown>> } | undefined)
    ?.parameters;
  const header = parameters?.IdempotencyKey;
  if (!header || !('example' in header)) return components;
  const { example: _example, ...rest } = header;
  return { ...(components as object), parameters: { ...parameters, IdempotencyKey: rest } };
}

/**
 * What the API reference's page loads. swagger-ui-dist holds more (its own index.html, the Swagger Petstore, which
 * the page's policy does not let it load; its initializer, source maps, a README), and Swagger UI's page was the
 * answer to any other path under /docs: /docs/index.html showed "Failed to load API definition", and at
 * /docs/a/b the page's relative files were that HTML too. Any other path is the API's 404.
 */
const DOCS_FILES = [
  '/swagger-ui.css',
  '/swagger-ui-bundle.js',
  '/swagger-ui-standalone-preset.js',
  '/swagger-ui-init.js',
  '/favicon-32x32.png',
  '/favicon-16x16.png',
];

function docsRouter(document: Record<string, unknown>): express.Router {
  const page = swaggerUi.setup(docsDocument(document), { customSiteTitle: 'Stripe Payment Service API' });
  // Case-sensitive like the app's own routing (see buildApp); strict, so /docs/swagger-ui.css/ is no file.
  const router = express.Router({ caseSensitive: true, strict: true });
  // The page's files are relative (./swagger-ui.css): only at /docs/ do they resolve under /docs.
  const toPage: RequestHandler = (req, res) => {
    const query = req.originalUrl.indexOf('?');
    res.redirect(301, `/docs/${query === -1 ? '' : req.originalUrl.slice(query)}`);
  };
  router.get('/', (req, res, next) => {
    if (pathEndsWithSlash(req.originalUrl)) page(req, res, next);
    else toPage(req, res, next);
  });
  router.get('/index.html', toPage);
  router.get(DOCS_FILES, ...swaggerUi.serve);
  return router;
}

function pathEndsWithSlash(originalUrl: string): boolean {
  const query = originalUrl.indexOf('?');
  return (query === -1 ? originalUrl : originalUrl.slice(0, query)).endsWith('/');
}

/**
 * Whether a request path (as routed: see routedPath) is one of the contract's paths with a POST operation. A
 * template's parameter matches one segment, as the validator matches it.
 */
function postPaths(document: Record<string, unknown>): (path: string) => boolean {
  const paths = (document.paths ?? {}) as Record<string, Record<string, unknown>>;
  const exact = new Set<string>();
  const templates: RegExp[] = [];
  for (const [path, item] of Object.entries(paths)) {
    if (!item.post) continue;
    if (!path.includes('{')) exact.add(path);
    else {
      const pattern = path
        .split(/\{[^}]*\}/)
        .map((part) => part.replace(/[.*+?^$()|[\]\\]/g, '\\$&'))
        .join('[^/]+');
      templates.push(new RegExp(`^${pattern}$`));
    }
  }
  return (path) => {
    const routed = routedPath(path);
    return exact.has(routed) || templates.some((t) => t.test(routed));
  };
}

export function buildApp(deps: AppDeps): Express {
  const { config, logger, spec, handlers } = deps;
  const auth = config.auth;
  const app = express();
  // Paths are the contract's, which are case-sensitive (OpenAPI matches path templates as written). Express ignores
  // case by default, but the checks that pick out paths (the pages' headers, the probes' exemptions, the webhook's
  // through a tunnel) compare them as written: GET /DOCS was Swagger UI with the API's headers, POST /Webhook stored
  // Stripe's events yet was answered 421 through a tunnel. Now /DOCS is an unknown path like any other (404).
  // Set before the first route: the app's router is made, with the setting, on first use.
  app.set('case sensitive routing', true);
  app.disable('x-powered-by');
  app.set('trust proxy', config.http.trustProxy > 0 ? config.http.trustProxy : false);
  app.set('query parser', 'simple');

  // API answers are not cached; computing an ETag hash for each would be wasted work.
  app.set('etag', false);
  app.use(requestLog(logger, deps.onResponse));
  app.use(requireHost);
  app.use(originForm);
  app.use(securityHeaders());
  if (deps.hostCheck) app.use(deps.hostCheck);
  // Before every answer a page of a listed origin may get: the limits' 429, the caps' 503 and the timeouts were
  // answered without CORS headers, so the browser gave the page a network error instead of them (and their
  // Retry-After); and a preflight, which never carries a key, was refused 429 by the limit of failed
  // authentication, failing the requests of customers whose key works.
  app.use(corsMiddleware(auth?.corsOrigins ?? []));
  // Before the key's lookup: one waiting on a busy database is answered in time all the same (and then not run).
  app.use(timeoutMiddleware(config.http.requestTimeoutMs));

  const authEnabled = Boolean(auth?.enabled && deps.store);
  const requirements = keyRequirements(spec.document);
  const requirementOf = (req: { path: string }): KeyRequirement =>
    servedWithoutKey(req.path) ? 'none' : keyRequirementOf(requirements, req.path);
  // Before the key is looked up: a client over its limit of failed authentication costs no lookup.
  const failureLimit = authEnabled ? authFailureLimit(auth?.authFailuresPerMinute ?? 0, requirementOf) : null;
  if (failureLimit) app.use(failureLimit.middleware);
  const authOptions: AuthOptions | null =
    authEnabled && deps.store
      ? {
          apiKeys: deps.store.apiKeys,
          ...(failureLimit ? { onAuthenticated: failureLimit.authenticated } : {}),
          ownerOrigins: auth?.ownerOrigins ?? null,
        }
      : null;
  // Before the cap and the body (see authenticateFirst): a request without a valid key holds neither a place nor
  // a body, so clients without a key cannot keep those with one out.
  if (authOptions) app.use(authenticateFirst(authOptions, requirementOf));
  const maxInFlight = config.http.maxConcurrentRequests;
  // First the share of publishable keys, then the cap on all: with a key anyone can read out of the shop's pages,
  // slow bodies held every place, and the back end's secret keys were answered 503 overloaded.
  const publishableShare = config.http.maxConcurrentPublishableRequests ?? Math.floor(maxInFlight / 2);
  const publishableCap =
    authOptions && publishableShare > 0
      ? admission(publishableShare, UNCAPPED_PATHS, { fullDetail: PUBLISHABLE_FULL }).middleware
      : null;
  // And each owner's share (opt-in), keyed by the owner authenticateFirst found from the headers, before the body:
  // one owner's secret keys sending their bodies slowly held every place, and every other owner was answered 503.
  // A publishable key's requests count apart, per owner too: one owner's publishable key, which anyone can read out
  // of its pages, then uses up neither that owner's back end's share nor (with a share below theirs) every
  // publishable place, which other owners' checkouts need.
  const perOwner = authOptions ? (config.http.maxConcurrentRequestsPerOwner ?? 0) : 0;
  const cap = admission(
    maxInFlight,
    UNCAPPED_PATHS,
    perOwner > 0 ? { perClient: { max: perOwner, keyOf: ownerShareOf, detail: OWNER_FULL } } : {},
  ).middleware;
  // One layer for both: each layer a request passes costs it a match and closures.
  app.use((req, res, next) => {
    if (withoutValidKey(req)) next();
    else if (publishableCap && withPublishableKey(req)) publishableCap(req, res, () => cap(req, res, next));
    else cap(req, res, next);
  });

  app.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(spec.json);
  });
  app.get('/openapi-3.0.json', (_req, res) => {
    res.type('application/json').send(spec.json30);
  });
  app.get('/openapi.yaml', (_req, res) => {
    res.type('application/yaml').send(spec.yaml);
  });
  app.use('/docs', docsRouter(spec.document));

  deps.extraRoutes?.(app);

  // Stripe signs the exact bytes it sent, so the webhook must see the raw body before any JSON parser.
  const webhook: RequestHandler = async (req, res) => {
    const done = holdWork(req);
    try {
      const reply = await handlers.handleStripeWebhook({
        body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
        query: {},
        path: {},
        headers: req.headers as never,
        ctx: contextOf(req),
      });
      sendReply(res, reply);
    } finally {
      done();
    }
  };
  app.post(
    '/webhook',
    admission(MAX_WEBHOOKS_IN_PROGRESS, new Set(), {
      perClient: { max: MAX_WEBHOOKS_PER_CLIENT, keyOf: clientAddressKey },
    }).middleware,
    (req, _res, next) => {
      // Where the validator, which never sees /webhook, would have put it: request logs and metrics label by
      // operationId, and without it webhooks were counted with unknown paths (operation="none").
      (req as { openapi?: unknown }).openapi = { schema: { operationId: 'handleStripeWebhook' } };
      next();
    },
    express.raw({ type: () => true, limit: WEBHOOK_BODY_LIMIT }),
    webhook,
  );
  // The validator never sees /webhook, so it cannot answer 405 for it as it does for the contract's other paths.
  app.all('/webhook', (req, _res, next) => {
    next(new ProblemError(405, `${req.method} is not allowed on /webhook.`, { headers: { Allow: 'POST' } }));
  });

  // HEAD is a GET without the body (RFC 9110, 9.3.2), and uptime monitors probe with it; the contract lists GETs
  // only, so the validator answered HEAD /healthz with 405. Node leaves the body out of a HEAD's answer itself; a
  // problem still names the HEAD (head.ts).
  app.use(routeHeadAsGet);
  const json = express.json({
    limit: config.http.jsonLimitBytes,
    type: ['application/json', 'application/*+json'],
    strict: true,
    verify: noteUnicodeEscapes,
  });
  // Only the contract's POSTs take a body. A body sent with a GET (which some HTTP clients allow) was parsed all
  // the same, and answered 413 or 400, statuses the GET operations do not have, instead of the operation's answer.
  // Nor is the body of a request without a valid key: it is answered 401 (or 404, 405) without it. Nor that of a
  // POST to a path with no POST operation: POST /healthz or /payment-intent/pi_1 with a malformed or large body was
  // answered 400, 413 or 415 instead of 405 (with Allow), and an unknown path instead of 404.
  const takesBody = postPaths(spec.document);
  app.use((req, res, next) => {
    if (req.method === 'POST' && !withoutValidKey(req) && takesBody(req.path)) {
      spellUtf8Charset(req);
      json(req, res, next);
    } else next();
  });
  app.use(
    OpenApiValidator.middleware({
      apiSpec: structuredClone(spec.document) as never,
      // The contract is linted in CI and checked by the tests; re-validating it costs every start ~60 ms.
      validateApiSpec: config.http.validateResponses,
      validateRequests: { allErrors: true, allowUnknownQueryParameters: false },
      validateResponses: config.http.validateResponses ? { allErrors: true } : false,
      // With auth off every caller is the anonymous owner (dispatch's default), as in the original service.
      validateSecurity: authOptions ? { handlers: apiKeySecurity(authOptions) } : false,
      ignorePaths: /^\/webhook$/,
      // No operation takes multipart/form-data (it is refused with 415 like any undeclared media type), so
      // multer is never handed a request body, and no request pays for a multipart check.
      fileUploader: false,
    }),
  );
  app.use(keyCheckFailures);
  app.use(refuseLoneSurrogates);
  const rateLimit = rateLimitMiddleware(auth?.rateLimitPerMinute ?? 0);
  if (rateLimit) app.use(rateLimit);
  app.use(
    dispatch(handlers, {
      ...(deps.store ? { idempotency: deps.store.idempotency } : {}),
      ...(deps.replays ? { replays: deps.replays } : {}),
      ...(deps.onWork ? { onWork: deps.onWork } : {}),
    }),
  );
  app.use(notFound);
  app.use(errorHandler);
  return app;
}
