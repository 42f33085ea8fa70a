import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import {
  checkoutPageGet,
  checkoutPagePost,
  postedFromElsewhere,
  postedFromElsewherePage,
  type PageResponse,
} from './checkout-page.js';
import type { RequestInfo, RouteResult, SandboxContext } from './context.js';
import { parseFaultConfig, type FaultConfig, type FaultInjector } from './faults.js';
import { parseForm, type FormObject } from './form-parser.js';
import { fingerprint, IdempotencyStore, type IdempotencyEntry } from './idempotency.js';
import { validateParams } from './param-spec.js';
import { authenticateIntent, getPaymentIntent } from './payment-intents.js';
import { getRefund, settleRefund } from './refunds.js';
import type { RequestLog } from './request-log.js';
import type { Router } from './router.js';
import { errorBody, invalidRequest, SandboxError, type StripeErrorFields } from './stripe-error.js';
import type { WebhookEndpointConfig } from './webhook-dispatcher.js';

export interface ServerDeps {
  ctx: SandboxContext;
  router: Router;
  faults: FaultInjector;
  idempotency: IdempotencyStore;
  requestLog: RequestLog;
  logger: Logger;
  secretKey: string | undefined;
  apiVersion: string;
  maxBodyBytes: number;
  /**
   * Why a request naming `host` is refused (DNS rebinding: see src/http/loopback-host.ts), or null to answer it.
   */
  misdirected(host: string | undefined): string | null;
  reset(): void;
  addWebhookEndpoint(config: WebhookEndpointConfig): void;
  stats(): unknown;
}

interface Body {
  text: string;
  tooLarge: boolean;
}

const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

const RATE_LIMITED: StripeErrorFields = {
  type: 'invalid_request_error',
  code: 'rate_limit',
  message: 'Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.',
};

/** Stripe's words for a request that waited too long for another's lock on the same object. */
const LOCK_TIMEOUT: StripeErrorFields = {
  type: 'invalid_request_error',
  code: 'lock_timeout',
  message:
    'This object cannot be accessed right now because another API request or Stripe process is currently ' +
    'accessing it. If you see this error intermittently, retry the request. If you see this error frequently and ' +
    'are making multiple concurrent requests to a single object, make your requests serially or at a lower rate.',
};

/** Stripe's words for a restricted key without the permission an endpoint needs (403). */
const PERMISSION_DENIED: StripeErrorFields = {
  type: 'invalid_request_error',
  message:
    'The provided key does not have the required permissions for this endpoint. Having the rak_refund_write ' +
    'permission would allow this request to continue.',
};

/**
 * On a 500 saved under its Idempotency-Key (and on its replays): a retry with the key can only get the same 500
 * back, so, as Stripe does, the answer tells the SDK not to make one. stripe-node's retry rule
 * (RequestSender._shouldRetry): "we expect the stripe-should-retry header to be false in most cases when a 500 is
 * returned, since our idempotency framework would typically replay it anyway"; Stripe's SDKs retry every other 5xx
 * and leave that decision to the header (github.com/stripe/stripe-go/pull/1829). A 500 that was not saved (before
 * the endpoint ran, or without a key) has no such header: a retry executes anew.
 */
const NO_RETRY: Readonly<Record<string, string>> = { 'Stripe-Should-Retry': 'false' };

const API_ERROR: StripeErrorFields = {
  type: 'api_error',
  message: 'An unknown error occurred while processing your request. Please try again.',
};

/**
 * Reads the body up to `limit` bytes. Past the limit the rest is drained and discarded (so the
 * client still gets the error), and past a hard cap the connection is cut.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Body> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    const hardCap = Math.max(limit * 16, 16 * 1024 * 1024);
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > hardCap) {
        req.destroy();
        reject(new Error('request body exceeds the hard cap'));
        return;
      }
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve({ text: tooLarge ? '' : Buffer.concat(chunks).toString('utf8'), tooLarge }));
    req.on('error', reject);
  });
}

/** Like Stripe: the key's prefix and last four characters only, and only when that hides enough. */
export function redactKey(key: string): string {
  const prefix = /^[a-z]{2,4}_(?:test|live)_/.exec(key)?.[0] ?? '';
  const showTail = key.length >= prefix.length + 12;
  return `${prefix}****${showTail ? key.slice(-4) : ''}`;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function authenticate(header: string | undefined, secretKey: string | undefined): string {
  let key: string | undefined;
  const bearer = header === undefined ? null : /^Bearer\s+(.+)$/i.exec(header);
  const basic = header === undefined ? null : /^Basic\s+(.+)$/i.exec(header);
  if (bearer) key = bearer[1]?.trim();
  else if (basic)
    key = Buffer.from(basic[1] ?? '', 'base64')
      .toString('utf8')
      .split(':')[0]
      ?.trim();
  if (!key) {
    throw new SandboxError(401, {
      type: 'invalid_request_error',
      message:
        'You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer ' +
        "auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for " +
        'details, or we can help at https://support.stripe.com/.',
    });
  }
  const valid =
    secretKey !== undefined
      ? sameSecret(key, secretKey)
      : key.startsWith('sk_test_') && key.length > 'sk_test_'.length;
  if (!valid) {
    throw new SandboxError(401, {
      type: 'invalid_request_error',
      message: `Invalid API Key provided: ${redactKey(key)}`,
    });
  }
  return key;
}

/** A key reused with another endpoint or other parameters (docs.stripe.com/api/errors: idempotency_error). */
function idempotencyError(message: string): SandboxError {
  return new SandboxError(400, { type: 'idempotency_error', message });
}

function splitPath(pathname: string): string[] | undefined {
  try {
    return pathname
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s));
  } catch {
    return undefined;
  }
}

/**
 * The control API has no key, so a request a browser makes on behalf of a web page is refused: a cross-origin
 * "simple" POST needs no preflight, and a page that rebinds a name of its own to 127.0.0.1 reads answers as
 * same-origin. Browsers mark both (`Origin`, `Sec-Fetch-Site`); test code and curl send neither. A GET the user
 * typed into the address bar (`Sec-Fetch-Site: none`) is still answered.
 */
function fromWebPage(req: IncomingMessage, method: string): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site === 'none' && (method === 'GET' || method === 'HEAD')) return false;
  return site !== undefined || req.headers.origin !== undefined;
}

// Unref'd: an injected delay must not keep a closed sandbox's process alive.
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());

export function createRequestListener(deps: ServerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { ctx, router, faults, idempotency, requestLog, logger } = deps;

  function sendJson(
    res: ServerResponse,
    status: number,
    json: string,
    headers: Record<string, string | number>,
  ): void {
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(json),
      'Cache-Control': 'no-cache, no-store',
      ...headers,
    });
    res.end(json);
  }

  function sendPage(res: ServerResponse, requestId: string, page: PageResponse): void {
    res.writeHead(page.status, {
      ...page.headers,
      'Request-Id': requestId,
      'Content-Length': Buffer.byteLength(page.body),
    });
    res.end(page.body);
  }

  async function handleApi(
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    method: string,
    pathname: string,
    query: string,
    body: Body,
  ): Promise<void> {
    const stripeVersion = req.headers['stripe-version'];
    const headers: Record<string, string> = {
      'Request-Id': requestId,
      'Stripe-Version': typeof stripeVersion === 'string' ? stripeVersion : deps.apiVersion,
    };
    const rawKey = req.headers['idempotency-key'];
    const idempotencyKey = method === 'POST' && typeof rawKey === 'string' && rawKey !== '' ? rawKey : null;
    if (idempotencyKey !== null) headers['Idempotency-Key'] = idempotencyKey;
    let routePath: string | null = null;
    let formParams: FormObject | null = null;

    const respond = (
      status: number,
      json: string | null,
      extra: Record<string, string> = {},
      replayed = false,
    ) => {
      requestLog.add({
        requestId,
        method,
        path: pathname,
        route: routePath,
        params: formParams,
        idempotencyKey,
        status,
        response: json,
        replayed,
      });
      logger.debug({ requestId, method, path: pathname, status }, 'sandbox request');
      if (json === null) {
        // Fault injection: the work is done, but the client never hears about it.
        res.destroy();
        return;
      }
      sendJson(res, status, json, { ...headers, ...extra });
    };
    const fail = (err: SandboxError) =>
      respond(err.status, errorBody(err.fields, requestId), { ...err.headers });

    let scope: string | undefined;
    let entry: IdempotencyEntry | undefined;
    try {
      if (body.tooLarge) {
        throw invalidRequest(
          `Request body too large: the limit is ${deps.maxBodyBytes} bytes.`,
          undefined,
          undefined,
          413,
        );
      }
      const apiKey = authenticate(req.headers.authorization, deps.secretKey);

      const fault: FaultConfig | undefined = faults.matching(method, pathname);
      if (fault) {
        const decision = faults.decideBefore(fault);
        if (decision === 'rate_limit') throw new SandboxError(429, RATE_LIMITED);
        if (decision === 'lock_timeout')
          throw new SandboxError(429, LOCK_TIMEOUT, { 'Stripe-Should-Retry': 'true' });
        if (decision === 'permission') throw new SandboxError(403, PERMISSION_DENIED);
        if (decision === 'error') throw new SandboxError(500, API_ERROR);
      }

      const segments = splitPath(pathname);
      const match = segments ? router.match(method, segments) : undefined;
      if (!match) {
        throw invalidRequest(
          `Unrecognized request URL (${method}: ${pathname}). Please see https://stripe.com/docs or we can help at ` +
            'https://support.stripe.com/.',
          undefined,
          undefined,
          404,
        );
      }
      routePath = match.route.path;
      const execute = async (params: Record<string, unknown>): Promise<void> => {
        if (fault?.latency_ms) await sleep(fault.latency_ms);
        const request: RequestInfo = { id: requestId, idempotency_key: idempotencyKey };
        let result: RouteResult & { headers?: Record<string, string> };
        try {
          if (fault !== undefined && faults.shouldFailExecution(fault))
            throw new SandboxError(500, API_ERROR);
          result = match.route.handler(params, match.pathParams, request);
        } catch (err) {
          if (!(err instanceof SandboxError)) throw err;
          result = {
            status: err.status,
            json: errorBody(err.fields, requestId),
            headers: { ...err.headers },
          };
        }
        // Stored once the endpoint ran, business errors such as declines included.
        let saved = false;
        if (scope !== undefined && entry !== undefined) {
          idempotency.complete(scope, entry, result.status, result.json);
          saved = true;
        }
        entry = undefined;
        const dropped = fault !== undefined && faults.shouldDrop(fault);
        respond(result.status, dropped ? null : result.json, {
          ...result.headers,
          ...(saved && result.status >= 500 ? NO_RETRY : {}),
        });
      };

      const contentType = req.headers['content-type'];
      if (
        method === 'POST' &&
        body.text !== '' &&
        contentType !== undefined &&
        !contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')
      ) {
        throw invalidRequest(
          `Invalid request: unsupported Content-Type ${contentType}. If error persists and you need assistance, ` +
            'please contact support at https://support.stripe.com/contact/.',
        );
      }
      formParams = parseForm(method === 'POST' ? body.text : query);

      if (idempotencyKey !== null) {
        if (idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
          throw invalidRequest(
            `Idempotency-Key must be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters long.`,
          );
        }
        scope = IdempotencyStore.scope(apiKey, idempotencyKey);
        const print = fingerprint(formParams);
        const previous = idempotency.lookup(scope);
        if (previous) {
          if (previous.state === 'in_flight') {
            // Not an idempotency_error: Stripe answers this 409 as an invalid_request_error with the code
            // idempotency_key_in_use (a raw answer: github.com/beam-community/stripity-stripe/issues/564).
            throw new SandboxError(409, {
              type: 'invalid_request_error',
              code: 'idempotency_key_in_use',
              message:
                'There is currently another in-progress request using this Idempotent Key (that probably means ' +
                `you submitted twice, and the other request is still going through): ${idempotencyKey}. Please ` +
                'try again later.',
            });
          }
          if (previous.method !== method || previous.path !== pathname) {
            throw idempotencyError(
              `Keys for idempotent requests can only be used for the same endpoint they were first used for ` +
                `('${previous.method} ${previous.path}' vs '${method} ${pathname}'). Try using a key other than ` +
                `'${idempotencyKey}' if you meant to execute a different request.`,
            );
          }
          if (previous.fingerprint !== print) {
            throw idempotencyError(
              `Keys for idempotent requests can only be used with the same parameters they were first used with. ` +
                `Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
            );
          }
          const dropped = fault !== undefined && faults.shouldDrop(fault);
          respond(
            previous.status,
            dropped ? null : previous.body,
            {
              'Idempotent-Replayed': 'true',
              'Original-Request': previous.requestId,
              ...(previous.status >= 500 ? NO_RETRY : {}),
            },
            true,
          );
          return;
        }
        const params = validateParams(match.route.spec, formParams);
        entry = idempotency.reserve(scope, { method, path: pathname, fingerprint: print, requestId });
        await execute(params);
        return;
      }
      await execute(validateParams(match.route.spec, formParams));
    } catch (err) {
      if (scope !== undefined && entry !== undefined) idempotency.release(scope, entry);
      if (err instanceof SandboxError) {
        fail(err);
        return;
      }
      logger.error({ err, requestId, method, path: pathname }, 'sandbox request failed unexpectedly');
      fail(new SandboxError(500, API_ERROR));
    }
  }

  function controlError(res: ServerResponse, requestId: string, status: number, message: string): void {
    sendJson(res, status, JSON.stringify({ error: { type: 'invalid_request_error', message } }), {
      'Request-Id': requestId,
    });
  }

  function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
    if (text.trim() === '') return { ok: true, value: {} };
    try {
      return { ok: true, value: JSON.parse(text) as unknown };
    } catch {
      return { ok: false };
    }
  }

  function handleControl(
    res: ServerResponse,
    requestId: string,
    method: string,
    pathname: string,
    body: Body,
  ): void {
    const ok = (value: unknown) => sendJson(res, 200, JSON.stringify(value), { 'Request-Id': requestId });
    if (body.tooLarge) return controlError(res, requestId, 413, 'request body too large');
    const segments = splitPath(pathname)?.slice(1) ?? [];
    const route = `${method} /${segments.join('/')}`;
    if (route === 'GET /faults') return ok(faults.get());
    if (route === 'DELETE /faults') {
      faults.clear();
      return ok(faults.get());
    }
    if (route === 'POST /faults') {
      const parsed = parseJson(body.text);
      if (!parsed.ok) return controlError(res, requestId, 400, 'body must be JSON');
      const config = parseFaultConfig(parsed.value);
      if (typeof config === 'string') return controlError(res, requestId, 400, config);
      faults.set(config);
      return ok(config);
    }
    if (route === 'POST /reset') {
      deps.reset();
      return ok({ reset: true });
    }
    if (route === 'GET /requests') return ok({ object: 'list', data: requestLog.list() });
    if (route === 'DELETE /requests') {
      requestLog.clear();
      return ok({ object: 'list', data: [] });
    }
    if (route === 'GET /stats') return ok(deps.stats());
    if (route === 'GET /routes') return ok({ object: 'list', data: router.list() });
    if (route === 'POST /webhook_endpoints') {
      const parsed = parseJson(body.text);
      if (!parsed.ok || typeof parsed.value !== 'object' || parsed.value === null) {
        return controlError(res, requestId, 400, 'body must be a JSON object');
      }
      const input = parsed.value as Record<string, unknown>;
      try {
        deps.addWebhookEndpoint({
          url: input['url'] as string,
          secret: input['secret'] as string,
          ...(input['enabled_events'] !== undefined
            ? { enabledEvents: input['enabled_events'] as string[] }
            : {}),
        });
      } catch (err) {
        return controlError(res, requestId, 400, (err as Error).message);
      }
      return ok({ url: input['url'], enabled_events: input['enabled_events'] ?? ['*'] });
    }
    if (method === 'POST' && segments.length === 3 && segments[0] === 'refunds' && segments[2] === 'settle') {
      let refund;
      try {
        refund = getRefund(ctx, segments[1] ?? '');
      } catch {
        return controlError(res, requestId, 404, `No such refund: '${segments[1] ?? ''}'`);
      }
      if (!settleRefund(ctx, refund, { id: requestId, idempotency_key: null })) {
        return controlError(
          res,
          requestId,
          400,
          `Refund ${refund.id} is ${refund.status} and has nothing left to settle.`,
        );
      }
      return ok(refund);
    }
    if (
      method === 'POST' &&
      segments.length === 3 &&
      segments[0] === 'payment_intents' &&
      segments[2] === 'authenticate'
    ) {
      const parsed = parseJson(body.text);
      const outcome =
        parsed.ok && typeof parsed.value === 'object' && parsed.value !== null
          ? ((parsed.value as Record<string, unknown>)['outcome'] ?? 'succeed')
          : undefined;
      if (outcome !== 'succeed' && outcome !== 'fail') {
        return controlError(res, requestId, 400, 'body must be {"outcome": "succeed" | "fail"}');
      }
      let intent;
      try {
        intent = getPaymentIntent(ctx, segments[1] ?? '');
      } catch {
        return controlError(res, requestId, 404, `No such payment_intent: '${segments[1] ?? ''}'`);
      }
      if (!authenticateIntent(ctx, intent, outcome === 'succeed', { id: requestId, idempotency_key: null })) {
        return controlError(
          res,
          requestId,
          400,
          `PaymentIntent ${intent.id} is ${intent.status} and has nothing to authenticate.`,
        );
      }
      return ok(intent);
    }
    return controlError(res, requestId, 404, `Unknown sandbox control endpoint: ${method} ${pathname}`);
  }

  function handleCheckout(
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    method: string,
    pathname: string,
    query: string,
    body: Body,
  ): void {
    const segments = splitPath(pathname);
    const id = segments?.length === 2 ? (segments[1] ?? '') : '';
    if (method === 'GET' || method === 'HEAD')
      return sendPage(res, requestId, checkoutPageGet(ctx, id, query));
    if (method === 'POST') {
      if (postedFromElsewhere(req.headers)) return sendPage(res, requestId, postedFromElsewherePage(id));
      return sendPage(res, requestId, checkoutPagePost(ctx, id, body.tooLarge ? '\u0000' : body.text));
    }
    res.writeHead(405, {
      Allow: 'GET, POST',
      'Content-Type': 'text/plain; charset=utf-8',
      'Request-Id': requestId,
    });
    res.end('Method Not Allowed');
  }

  async function handle(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    // Before anything else, the hosted checkout page and the control API included: a rebound page could
    // otherwise pay sessions, read captured requests (client secrets) or, with any sk_test_ key, call the API.
    const misdirected = deps.misdirected(req.headers.host);
    if (misdirected !== null) return controlError(res, requestId, 421, misdirected);
    const method = (req.method ?? 'GET').toUpperCase();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q === -1 ? url : url.slice(0, q);
    const query = q === -1 ? '' : url.slice(q + 1);
    let body: Body;
    try {
      body = await readBody(req, deps.maxBodyBytes);
    } catch {
      res.destroy();
      return;
    }
    if (pathname.startsWith('/_sandbox/')) {
      if (fromWebPage(req, method)) {
        return controlError(
          res,
          requestId,
          403,
          'The sandbox control API does not answer requests made by web pages.',
        );
      }
      return handleControl(res, requestId, method, pathname, body);
    }
    if (pathname.startsWith('/checkout/'))
      return handleCheckout(req, res, requestId, method, pathname, query, body);
    return handleApi(req, res, requestId, method, pathname, query, body);
  }

  return (req, res) => {
    const requestId = `req_${ctx.ids.random(14)}`;
    // On every answer, as on the service's own (src/http/api-headers.ts): a browser that sniffed a JSON answer
    // quoting what a request sent (an unknown path, an email) as HTML would run it as the sandbox's own page.
    res.setHeader('X-Content-Type-Options', 'nosniff');
    handle(req, res, requestId).catch((err: unknown) => {
      logger.error({ err, requestId }, 'sandbox failed to handle a request');
      if (!res.headersSent) {
        sendJson(res, 500, JSON.stringify({ error: API_ERROR }), { 'Request-Id': requestId });
      } else {
        res.destroy();
      }
    });
  };
}
