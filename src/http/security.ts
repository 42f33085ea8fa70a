/**
 * The edges: which host a request names (only loopback names while the service listens on loopback), who is
 * calling (API keys, looked up from the headers before the cap on requests at work and before the body is read;
 * scopes, checked by express-openapi-validator's security step), browsers (CORS allow-list), how often (per-key rate limit, and failed authentication per client
 * address), how long (request timeout), and safe headers (a lean set for JSON, helmet for pages).
 */
import { isIP } from 'node:net';
import cors from 'cors';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator, MemoryStore, rateLimit } from 'express-rate-limit';
import helmet from 'helmet';
import { hashKey, kindOfKey, looksLikeKey, PUBLISHABLE_OPERATIONS } from '../auth/api-keys.js';
import type { ApiKey, ApiKeysRepo } from '../store/index.js';
import { API_HEADERS } from './api-headers.js';
import { sendProblem } from './errors.js';
import {
  allowedHostMatcher,
  configuredHostName,
  isLoopbackAddress,
  isLoopbackHost,
  misdirectedDetail,
} from './loopback-host.js';
import type { Caller } from './operations.js';
import { problemBody, ProblemError } from './problem.js';
import { routedPath } from './request-target.js';

const KEY_CHECK_FAILURE = Symbol('keyCheckFailure');
const KEY_REFUSED = Symbol('keyRefused');

type WithCaller = Request & {
  caller?: Caller;
  openapi?: { schema?: { operationId?: string } };
  [KEY_CHECK_FAILURE]?: unknown;
  [KEY_REFUSED]?: true;
};

class AuthError extends Error {
  constructor(
    readonly status: 401 | 403,
    message: string,
  ) {
    super(message);
  }
}

// One message for missing, unknown and revoked keys, so a caller cannot tell a revoked key from a typo.
export const UNAUTHENTICATED_DETAIL = 'A valid API key is required (Authorization: Bearer <key>).';

export interface AuthOptions {
  apiKeys: ApiKeysRepo;
  /** How often at most a key's last-used time is written. */
  touchEveryMs?: number;
  /** Told the hash of every key that is found active (see authFailureLimit). */
  onAuthenticated?: (keyHash: string) => void;
  /**
   * OWNER_ORIGINS: each owner's origins, which its publishable keys' callers carry (Caller.origins; an owner not
   * listed has none). Absent or null: no caller carries any.
   */
  ownerOrigins?: ReadonlyMap<string, readonly string[]> | null;
}

/** How many `Authorization` fields the request has (Node keeps the first as req.headers.authorization). */
function authorizationFields(req: Request): number {
  let n = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() === 'authorization') n++;
  }
  return n;
}

/**
 * The key in `Authorization: Bearer <key>` (scheme case-insensitive, RFC 9110), if any. A request with more than
 * one Authorization field has none: the field is not a list (RFC 9110, 11.6.2), Node keeps the first and drops the
 * rest, and a proxy or log in front may read another, so the request was answered as the first key's whatever the
 * others said.
 */
function bearerKey(req: Request): string | undefined {
  const key = /^Bearer +([^\s]+) *$/i.exec(req.get('authorization') ?? '')?.[1];
  return key !== undefined && authorizationFields(req) === 1 ? key : undefined;
}

const TWO_AUTHORIZATIONS_DETAIL = 'Send one Authorization header: this request has more than one.';

/**
 * The 401 for a request whose key is missing, malformed or not an active key, noted on the request when it sent
 * one: where a key is optional (/metrics) the answer is the anonymous one, 200, yet the key was tried all the same,
 * and authFailureLimit counts it.
 */
function refused(req: WithCaller, detail = UNAUTHENTICATED_DETAIL): AuthError {
  if (req.get('authorization') !== undefined) req[KEY_REFUSED] = true;
  return new AuthError(401, detail);
}

/** What a request's key was found to be: an active key's record, refused (the 401's detail), or not checked. */
type Authentication =
  | { readonly record: ApiKey; readonly publishable: boolean }
  | { readonly refused: string }
  | { readonly failure: unknown };

const AUTHENTICATION = Symbol('authentication');

type Authenticated = WithCaller & { [AUTHENTICATION]?: Promise<Authentication> };

/** Looks the request's key up, once per request: the first caller's lookup is every later caller's answer. */
function authenticate(req: Request, opts: AuthOptions): Promise<Authentication> {
  const r = req as Authenticated;
  return (r[AUTHENTICATION] ??= lookUpKey(req, opts));
}

async function lookUpKey(req: Request, opts: AuthOptions): Promise<Authentication> {
  if (authorizationFields(req) > 1) return { refused: TWO_AUTHORIZATIONS_DETAIL };
  const key = bearerKey(req);
  if (!key || !looksLikeKey(key)) return { refused: UNAUTHENTICATED_DETAIL };
  const hash = hashKey(key);
  let record: ApiKey | null;
  try {
    record = await opts.apiKeys.findActiveByHash(hash);
  } catch (failure) {
    return { failure };
  }
  if (!record) return { refused: UNAUTHENTICATED_DETAIL };
  opts.onAuthenticated?.(hash);
  return { record, publishable: kindOfKey(key) === 'publishable' };
}

const WITHOUT_VALID_KEY = Symbol('withoutValidKey');
const PUBLISHABLE_KEY = Symbol('publishableKey');
const KEY_OWNER = Symbol('keyOwner');

/**
 * Mounted before the cap on requests at work (admission) and before any body is read: looks up the key of every
 * request that needs one (or sends one where it is optional), from its headers alone, and keeps the result for the
 * validator's security handler (apiKeySecurity), so a request's key is looked up once. The key used to be checked
 * only by that handler, after the body had been read and while the request held a place under
 * MAX_CONCURRENT_REQUESTS: anyone without a key could take every place with POSTs whose bodies they sent slowly, and
 * keyed clients were answered 503 `overloaded` for as long as they kept them open.
 *
 * It answers nothing itself: a request without a valid key goes on, marked (withoutValidKey), so the cap lets it
 * through uncounted and its body is never read, and the validator answers it as before: 404 or 405 for a path or
 * method the contract does not have, then the 401 (or, where the key's lookup failed, 503 store_unavailable). Its
 * connection is closed after that answer rather than kept reading a body nobody will look at.
 */
export function authenticateFirst(
  opts: AuthOptions,
  requirementOf: (req: Request) => KeyRequirement,
): RequestHandler {
  return (req, res, next) => {
    const requirement = requirementOf(req);
    if (requirement === 'none' || (requirement === 'optional' && req.get('authorization') === undefined)) {
      next();
      return;
    }
    void authenticate(req, opts).then((result) => {
      if (!('record' in result)) {
        (req as Request & { [WITHOUT_VALID_KEY]?: true })[WITHOUT_VALID_KEY] = true;
        if (sendsBody(req)) res.shouldKeepAlive = false;
      } else {
        (req as Request & { [KEY_OWNER]?: string })[KEY_OWNER] = result.record.owner;
        if (result.publishable || result.record.kind === 'publishable') {
          (req as Request & { [PUBLISHABLE_KEY]?: true })[PUBLISHABLE_KEY] = true;
        }
      }
      next();
    });
  };
}

/** Whether authenticateFirst found that the request has no valid key (or could not look it up). */
export function withoutValidKey(req: Request): boolean {
  return (req as Request & { [WITHOUT_VALID_KEY]?: true })[WITHOUT_VALID_KEY] === true;
}

/**
 * Whether authenticateFirst found an active publishable key: a `ppk_` key, or one API_KEYS or `npm run keys` recorded
 * as publishable (a hashed entry with the `publishable` scope), which apiKeySecurity restricts as publishable too.
 */
export function withPublishableKey(req: Request): boolean {
  return (req as Request & { [PUBLISHABLE_KEY]?: true })[PUBLISHABLE_KEY] === true;
}

/** The owner of the active key authenticateFirst found, if it found one (before the body is read). */
export function keyOwner(req: Request): string | undefined {
  return (req as Request & { [KEY_OWNER]?: string })[KEY_OWNER];
}

function sendsBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The validator's security handler for the `ApiKey` scheme: authenticates (reusing authenticateFirst's lookup),
 * checks scopes, sets req.caller.
 */
export function apiKeySecurity(opts: AuthOptions) {
  const lastTouched = new Map<string, number>();
  const touchEveryMs = opts.touchEveryMs ?? 60_000;
  return {
    ApiKey: async (req: Request, scopes: string[]): Promise<boolean> => {
      const r = req as WithCaller;
      const result = await authenticate(req, opts);
      if ('failure' in result) {
        r[KEY_CHECK_FAILURE] = result.failure;
        throw result.failure;
      }
      if ('refused' in result) throw refused(r, result.refused);
      const { record } = result;
      // A ppk_ key is in the shop's pages whatever its record says: API_KEYS lists one by its hash alone, and an
      // entry `shop|payments:write|sha256:<hash of a ppk_ key>` (the ppk_ entry with the key taken out) recorded
      // it as a secret key, with which anyone who read it out of the pages could confirm intents (card testing).
      const kind = result.publishable ? 'publishable' : record.kind;
      const operationId = r.openapi?.schema?.operationId ?? '';
      if (kind === 'publishable' && !PUBLISHABLE_OPERATIONS.has(operationId)) {
        throw new AuthError(403, 'Publishable keys may only create checkout sessions and payment intents.');
      }
      const missing = scopes.filter((s) => !record.scopes.includes(s));
      if (missing.length > 0) throw new AuthError(403, `This API key lacks the ${missing.join(', ')} scope.`);
      r.caller = {
        owner: record.owner,
        keyId: record.id,
        scopes: record.scopes,
        kind,
        ...(kind === 'publishable' ? { client: clientAddressKey(req) } : {}),
        ...(kind === 'publishable' && opts.ownerOrigins
          ? { origins: opts.ownerOrigins.get(record.owner) ?? [] }
          : {}),
      };
      const now = Date.now();
      if ((lastTouched.get(record.id) ?? 0) + touchEveryMs < now) {
        lastTouched.set(record.id, now);
        void opts.apiKeys.touch(record.id).catch(() => undefined);
      }
      return true;
    },
  };
}

/** Why the key the request sent could not be checked (its lookup failed: the database did not answer), if so. */
export function keyCheckFailure(req: Request): unknown {
  return (req as WithCaller)[KEY_CHECK_FAILURE];
}

/**
 * Mounted right after the validator. It answers 401 for whatever a security handler throws, with the error's own
 * message as the detail: while the database did not answer, every request with a good key was told
 * "401 PostgreSQL did not answer in time", so clients took their keys for revoked, did not retry, and each answer
 * counted as a failed authentication of their address. Such a request fails with the lookup's own error instead
 * (503 store_unavailable with Retry-After).
 */
export const keyCheckFailures: ErrorRequestHandler = (err, req, _res, next) => {
  const failure = keyCheckFailure(req);
  next((err as { status?: unknown }).status === 401 && failure !== undefined ? failure : err);
};

/** Paths that serve HTML to browsers (Swagger UI, the demo storefront). */
export const PAGE_PREFIXES = ['/docs', '/demo'] as const;

const isPage = (path: string) => PAGE_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`));

/** helmet's browser policy for the pages, the lean API set for everything else. */
export function securityHeaders(): RequestHandler {
  const pages = helmetMiddleware();
  return (req, res, next) => {
    if (isPage(req.path)) {
      pages(req, res, next);
      return;
    }
    for (const [name, value] of API_HEADERS) res.setHeader(name, value);
    next();
  };
}

export function helmetMiddleware(): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      directives: {
        // Swagger UI and the demo load only their own scripts; Swagger UI needs inline styles and data: images.
        'script-src': ["'self'"],
        'style-src': ["'self'", "'unsafe-inline'"],
        'img-src': ["'self'", 'data:'],
        // Swagger UI posts no form: "Try it out" uses fetch, and Authorize's submit is handled by its script. Any
        // http: or https: address let markup injected into the page send what a reader typed (an API key) elsewhere.
        'form-action': ["'none'"],
        // helmet's default sends every script and style of a page opened over plain http (a server or container
        // reached by name or address, not localhost) to https, which that server does not speak: a blank page.
        // The pages load only their own origin's files, so over https there is nothing insecure to upgrade.
        'upgrade-insecure-requests': null,
      },
    },
  });
}

/**
 * An origin as a browser sends it in `Origin` (RFC 6454 serialization): host in lower case, no default port.
 * CORS_ORIGINS=https://Shop.example.com:443 names the origin https://shop.example.com, which the checkout's
 * redirect check already took as the shop's, yet no browser's Origin was ever equal to it as written.
 */
function serializedOrigin(origin: string): string {
  try {
    const serialized = new URL(origin).origin;
    return serialized === 'null' ? origin : serialized;
  } catch {
    return origin;
  }
}

export function corsMiddleware(origins: readonly string[]): RequestHandler {
  const allowed = new Set(origins.map(serializedOrigin));
  const handler = cors({
    origin: (origin, cb) => cb(null, origin !== undefined && allowed.has(origin)),
    methods: ['GET', 'POST'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Request-Id'],
    // Every header the contract gives an answer a page may read; a browser hides any other from its script.
    exposedHeaders: [
      'X-Request-Id',
      'Idempotent-Replayed',
      'Retry-After',
      'RateLimit',
      'RateLimit-Policy',
      'WWW-Authenticate',
    ],
    maxAge: 600,
  });
  return (req, res, next) => {
    const origin = req.get('origin');
    if (req.method === 'OPTIONS' && origin !== undefined && !allowed.has(origin)) {
      sendProblem(res, {
        status: 403,
        body: problemBody(403, {
          detail: 'This origin is not allowed to call the API.',
          instance: req.path,
          requestId: String(req.id),
          code: 'origin_not_allowed',
        }),
        headers: {},
      });
      return;
    }
    handler(req, res, next);
  };
}

export interface LoopbackHostCheck {
  /**
   * Mounted first, on the API and on a worker's health app alike (by the service only without API keys); null when
   * HOST is an address other than loopback (0.0.0.0 in the image), where requests pay nothing for it.
   */
  readonly middleware: RequestHandler | null;
  /** Told the address the server is bound to, once it listens: the check applies while that is loopback. */
  listeningOn(address: string): void;
}

/**
 * Against DNS rebinding (see loopback-host.ts): while the server is bound to a loopback address, a request naming
 * any other host is answered 421 (Misdirected Request: this server does not answer for that name) before anything
 * else runs, but for POST /webhook, which answers only what Stripe signed. On any other address (HOST=0.0.0.0, the
 * Docker image) it does nothing: clients there reach it by names and addresses of their own, and API keys or the
 * network decide who may call. The bound address decides,
 * not HOST, so a name that resolves to loopback (Debian maps the machine's own name to 127.0.1.1) is covered.
 * `allowedHosts` (ALLOWED_HOSTS) names more hosts answered: a tunnel's, or a same-host reverse proxy's that passes
 * `Host` through. It only adds names: where the check does not apply, every name is answered anyway.
 */
export function loopbackHostCheck(host: string, allowedHosts: readonly string[] = []): LoopbackHostCheck {
  let listening: string | null = null;
  const allowed = configuredHostName(host);
  const listed = allowedHostMatcher(allowedHosts);
  let lastWarned = 0;
  // Every request of a client names the same host: the last one answered skips the match.
  let lastAnswered: string | undefined;
  const middleware: RequestHandler = (req, _res, next) => {
    const requested = req.headers.host;
    if (listening === null) {
      next();
      return;
    }
    if (requested === lastAnswered || isLoopbackHost(requested, allowed) || listed(requested)) {
      lastAnswered = requested;
      next();
      return;
    }
    // Stripe's webhooks reach a developer's machine through a tunnel that names its own host. A page can only get
    // a 400 for a signature it cannot make there, and a signed event is Stripe's to send: nothing to rebind to.
    // As routed (one trailing slash ignored), as the webhook's route takes it: an endpoint set up as /webhook/ got 421.
    if (req.method === 'POST' && routedPath(req.path) === '/webhook') {
      next();
      return;
    }
    // Read from `Host` itself: req.hostname would take X-Forwarded-Host, which any page can set.
    const named = requested ?? '';
    if (Date.now() - lastWarned >= 60_000) {
      lastWarned = Date.now();
      req.log.warn(
        { host: named.slice(0, 100), listening },
        'refused a request for another host than a loopback name (DNS rebinding?); said at most once a minute',
      );
    }
    next(
      new ProblemError(421, misdirectedDetail(named, listening, 'HOST', 'ALLOWED_HOSTS'), {
        code: 'host_not_allowed',
      }),
    );
  };
  return {
    middleware: isIP(host) === 0 || isLoopbackAddress(host) ? middleware : null,
    listeningOn(address) {
      listening = isLoopbackAddress(address) ? address : null;
    },
  };
}

/**
 * Liveness and readiness probes are never limited: without a key a caller is counted by IP, and behind a load
 * balancer (TRUST_PROXY off) its probes share one IP with every other request that has no key, so anyone
 * could otherwise make the probes answer 429 and the instance be taken out of service.
 */
const UNLIMITED_OPERATIONS: ReadonlySet<string> = new Set(['getHealth', 'getReadiness']);

/** The 429 every limit answers: problem+json, code rate_limited, and Retry-After in whole seconds. */
function sendRateLimited(req: Request, res: Response, resetTime: Date | undefined, windowMs: number): void {
  const retryAfter = Math.max(
    1,
    Math.ceil(((resetTime?.getTime() ?? Date.now() + windowMs) - Date.now()) / 1000),
  );
  sendProblem(res, {
    status: 429,
    body: problemBody(429, {
      detail: 'Rate limit reached; retry later.',
      instance: req.path,
      requestId: String(req.id),
      code: 'rate_limited',
      retry_after: retryAfter,
    }),
    headers: { 'Retry-After': String(retryAfter) },
  });
}

/** Client addresses as express-rate-limit keys them: IPv4 as it is, IPv6 by its /56 subnet. */
export const clientAddressKey = (req: Request) => ipKeyGenerator(req.ip ?? 'unknown');

/**
 * Whose budget a request spends: its key's, or its client address's without one. A publishable key is in every
 * browser of the shop's customers, and anyone can read it out of the shop's pages: one budget for all of them let
 * a single client spend it (10 requests a second at the default limit) and every customer's checkout answer 429.
 * Each client address of a publishable key has a budget of its own, and the key a total (PUBLISHABLE_KEY_CLIENTS).
 */
function rateLimitKey(req: Request): string {
  const caller = (req as WithCaller).caller;
  if (!caller?.keyId) return clientAddressKey(req);
  return caller.kind === 'publishable' ? `${caller.keyId} ${clientAddressKey(req)}` : caller.keyId;
}

/**
 * A publishable key's total, in clients' budgets: what all its clients together may spend. Each of its requests
 * is a call to Stripe, and many addresses each within their own budget could otherwise spend the Stripe account's
 * own rate limit (100 requests a second in live mode), which the shop's refunds and reads share.
 */
export const PUBLISHABLE_KEY_CLIENTS = 5;

type Limited = Request & { rateLimit?: { resetTime?: Date }; publishableRateLimit?: { resetTime?: Date } };

/** Null when there is no limit (RATE_LIMIT_PER_MINUTE=0): nothing to mount, so requests pass no layer for it. */
export function rateLimitMiddleware(perMinute: number): RequestHandler | null {
  if (perMinute <= 0) return null;
  const skip = (req: Request) =>
    UNLIMITED_OPERATIONS.has((req as WithCaller).openapi?.schema?.operationId ?? '');
  const perCaller = rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    skip,
    keyGenerator: rateLimitKey,
    handler: (req, res, _next, options) => {
      sendRateLimited(req, res, (req as Limited).rateLimit?.resetTime, options.windowMs);
    },
  });
  const publishableTotal = rateLimit({
    windowMs: 60_000,
    limit: perMinute * PUBLISHABLE_KEY_CLIENTS,
    standardHeaders: false,
    legacyHeaders: false,
    requestPropertyName: 'publishableRateLimit',
    skip: (req) => skip(req) || (req as WithCaller).caller?.kind !== 'publishable',
    keyGenerator: (req) => (req as WithCaller).caller?.keyId ?? '',
    handler: (req, res, _next, options) => {
      sendRateLimited(req, res, (req as Limited).publishableRateLimit?.resetTime, options.windowMs);
    },
  });
  return (req, res, next) => {
    void perCaller(req, res, (err?: unknown) => {
      if (err !== undefined) next(err);
      else void publishableTotal(req, res, next);
    });
  };
}

export interface AuthFailureLimit {
  /** Mounted before authentication (and before the body is read). */
  readonly middleware: RequestHandler;
  /** For AuthOptions.onAuthenticated. */
  readonly authenticated: (keyHash: string) => void;
}

/** What a path's operations ask of the caller: nothing (`security: []`), a key or none, or a key. */
export type KeyRequirement = 'none' | 'optional' | 'required';

const AUTH_FAILURE_WINDOW_MS = 60_000;

/**
 * Failed authentication, limited per client address. The per-key limit runs after authentication, so it
 * never saw a request with a missing, unknown or revoked key: anyone could try keys as fast as the
 * service answered, each try a key lookup in the store.
 *
 * Every answer 401 counts against the client's address (a fixed window of a minute), and so does a key refused
 * where one is optional (/metrics answers it as a scrape without one). Once an address has
 * `perMinute` of them, its requests are answered 429 before the key is looked up or the body read, unless
 * they present a key this process has already seen authenticate: many clients can share one address (a
 * NAT, or a proxy with TRUST_PROXY off), and one of them trying keys must not lock the others out. Only a
 * client whose key this process has not seen yet waits for the window to end. Counting answers given (not
 * requests in flight, as express-rate-limit's skipSuccessfulRequests would) keeps a burst of first requests
 * with a good key from being refused. Operations that need no key (probes, the webhook) are never refused,
 * nor those where a key is optional (/metrics) when the request carries none.
 */
export function authFailureLimit(
  perMinute: number,
  requirementOf: (req: Request) => KeyRequirement,
): AuthFailureLimit | null {
  if (perMinute <= 0) return null;
  const failures = new MemoryStore();
  // MemoryStore reads nothing but the window from express-rate-limit's options.
  failures.init({ windowMs: AUTH_FAILURE_WINDOW_MS } as Parameters<MemoryStore['init']>[0]);
  // Hashes of keys found active. Only the store's own keys get in, so it is no bigger than that table; a
  // key revoked since is still looked up (and refused) like any other.
  const known = new Set<string>();
  const middleware: RequestHandler = async (req, res, next) => {
    const requirement = requirementOf(req);
    if (requirement === 'none') {
      next();
      return;
    }
    const client = clientAddressKey(req);
    res.once('finish', () => {
      // A key refused where one is optional (/metrics) is answered as a scrape without one, 200: counted too, or
      // anyone could try keys there without limit (and tell a working one by the RateLimit budget it answers with).
      if (res.statusCode === 401 || (req as WithCaller)[KEY_REFUSED]) void failures.increment(client);
    });
    const counted = await failures.get(client);
    if (counted && counted.totalHits >= perMinute) {
      const authorization = req.get('authorization');
      const key = bearerKey(req);
      const keyless = requirement === 'optional' && authorization === undefined;
      if (!keyless && (key === undefined || !looksLikeKey(key) || !known.has(hashKey(key)))) {
        sendRateLimited(req, res, counted.resetTime, AUTH_FAILURE_WINDOW_MS);
        return;
      }
    }
    next();
  };
  return { middleware, authenticated: (keyHash) => known.add(keyHash) };
}

/**
 * What the operation a request reaches asks of its caller, by its path as routed (routedPath): /healthz/ is
 * GET /healthz. Matched exactly, it was taken for a path that needs a key, and a probe set up as /healthz/ was
 * answered 429 once its address (a load balancer's, without TRUST_PROXY) had failed authentication too often. Any
 * other spelling (/HEALTHZ, //healthz, /%68ealthz) reaches no operation, and needs a key like every path the
 * contract does not list.
 */
export function keyRequirementOf(
  requirements: ReadonlyMap<string, KeyRequirement>,
  path: string,
): KeyRequirement {
  return requirements.get(routedPath(path)) ?? 'required';
}

const HTTP_METHODS: ReadonlySet<string> = new Set([
  'get',
  'put',
  'post',
  'delete',
  'patch',
  'head',
  'options',
  'trace',
]);

/**
 * The contract's paths that do not need a key: `none` when no operation on it asks for one (`security: []`),
 * `optional` when each lets anonymous callers in (a `{}` alternative). Paths not listed need a key.
 */
export function keyRequirements(document: Record<string, unknown>): ReadonlyMap<string, KeyRequirement> {
  const out = new Map<string, KeyRequirement>();
  const paths = (document.paths ?? {}) as Record<string, Record<string, { security?: unknown }>>;
  for (const [path, item] of Object.entries(paths)) {
    const securities = Object.entries(item)
      .filter(([method]) => HTTP_METHODS.has(method))
      .map(([, op]) => (Array.isArray(op.security) ? (op.security as object[]) : null));
    if (securities.length === 0 || securities.some((s) => s === null)) continue;
    if (securities.every((s) => s!.length === 0)) out.set(path, 'none');
    else if (securities.every((s) => s!.length === 0 || s!.some((alt) => Object.keys(alt).length === 0))) {
      out.set(path, 'optional');
    }
  }
  return out;
}

const GENERATED_REFUND_ID = Symbol('generatedRefundId');

/** Notes the request_id the service generated for a refund request that named none (see timeoutAdvice). */
export function noteGeneratedRefundId(req: Request, requestId: string): void {
  (req as Request & { [GENERATED_REFUND_ID]?: string })[GENERATED_REFUND_ID] = requestId;
}

/**
 * What a timed-out request's client should do. Its handler keeps running (a Stripe call cannot be taken back), so
 * a POST may still complete: with an Idempotency-Key (or a refund's request_id) a retry is answered with that
 * result; without one, a retry is a new request and may make a second payment intent or refund, so the answer
 * neither says nor signals (Retry-After, which retrying HTTP clients follow by themselves) that retrying is safe.
 */
function timeoutAdvice(req: Request): { detail: string; retrySafe: boolean } {
  if (req.method !== 'POST') return { detail: 'The request took too long. Retry later.', retrySafe: true };
  if (req.get('idempotency-key') !== undefined) {
    return {
      detail:
        'The request took too long and may still complete. Retry later with the same Idempotency-Key, within 24 hours (the time it is kept): the retry gets its result.',
      retrySafe: true,
    };
  }
  const body: unknown = req.body;
  if (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as { request_id?: unknown }).request_id === 'string'
  ) {
    return {
      detail:
        'The request took too long and may still complete. Retry later with the same request_id: the retry gets its result.',
      retrySafe: true,
    };
  }
  // A refund request that named no request_id: the one the service gave it, under which it may still be made.
  const generated = (req as Request & { [GENERATED_REFUND_ID]?: string })[GENERATED_REFUND_ID];
  if (generated !== undefined) {
    return {
      detail:
        'The request took too long and may still complete. It had no request_id or Idempotency-Key, so sending it ' +
        `again as it was would refund a second time: check /refund-status/${generated}, or send it again with ` +
        `request_id ${generated}, which refunds at most once.`,
      retrySafe: false,
    };
  }
  return {
    detail:
      'The request took too long and may still complete. It had no Idempotency-Key, so a retry may do it twice: check its outcome before retrying, and send an Idempotency-Key to make retries safe.',
    retrySafe: false,
  };
}

/**
 * Answers 503 when a handler takes too long, so a client never waits on a hung upstream forever. A request
 * whose body has not all arrived by then is the client's delay, not ours: 408, and the connection is closed
 * rather than kept reading a body that may never come.
 */
export function timeoutMiddleware(ms: number): RequestHandler {
  return (req, res, next) => {
    const timer = setTimeout(() => {
      if (res.headersSent) return;
      if (!req.complete) {
        req.log.info({ ms }, 'request body not received in time');
        sendProblem(res, {
          status: 408,
          body: problemBody(408, {
            detail: 'The request body did not arrive in time.',
            instance: req.path,
            requestId: String(req.id),
            code: 'request_timeout',
          }),
          headers: { Connection: 'close' },
        });
        return;
      }
      req.log.warn({ ms }, 'request timed out');
      const { detail, retrySafe } = timeoutAdvice(req);
      sendProblem(res, {
        status: 503,
        body: problemBody(503, {
          detail,
          instance: req.path,
          requestId: String(req.id),
          code: 'timeout',
          ...(retrySafe && { retry_after: 1 }),
        }),
        headers: retrySafe ? { 'Retry-After': '1' } : {},
      });
    }, ms);
    timer.unref();
    // 'close' follows 'finish' for a completed response and also fires when the client goes away.
    res.on('close', () => clearTimeout(timer)); // emitted once (see request-log.ts)
    next();
  };
}
