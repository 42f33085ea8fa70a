/**
 * The one error path: whatever failed (validator, body parser, domain, Stripe, a bug), the client gets
 * application/problem+json with a stable shape, and a 500 never shows an internal message.
 */
import zlib from 'node:zlib';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import { StoreUnavailableError } from '../store/errors.js';
import { API_HEADERS } from './api-headers.js';
import { methodAsSent } from './head.js';
import { ProblemError, PROBLEM_CONTENT_TYPE, problemBody, type FieldError } from './problem.js';

interface ValidatorError extends Error {
  status: number;
  errors?: { path?: string; message?: string; errorCode?: string }[];
  headers?: Record<string, string>;
}

interface BodyParserError extends Error {
  type: string;
  status?: number;
  expose?: boolean;
}

function isValidatorError(err: unknown): err is ValidatorError {
  return (
    err instanceof Error &&
    typeof (err as ValidatorError).status === 'number' &&
    Array.isArray((err as ValidatorError).errors)
  );
}

function isBodyParserError(err: unknown): err is BodyParserError {
  return err instanceof Error && typeof (err as BodyParserError).type === 'string' && 'expose' in err;
}

/**
 * A client error in http-errors' form (a 4xx status, expose) without body-parser's `type`: body-parser passes
 * zlib's own error on that way when a body is not what its Content-Encoding says.
 */
function isExposedClientError(err: unknown): err is Error & { status: number; code?: unknown } {
  const status = (err as { status?: unknown }).status;
  return (
    err instanceof Error &&
    (err as { expose?: unknown }).expose === true &&
    typeof status === 'number' &&
    status >= 400 &&
    status < 500
  );
}

/** `.body.amount` / `/body/amount` → `/body/amount`. */
function toPointer(p: string | undefined): string {
  if (!p) return '';
  const trimmed = p.startsWith('.') ? p.slice(1).replace(/\./g, '/') : p.replace(/^\//, '');
  // Name locations as OpenAPI's `in` does, so a client can map an error to its parameter.
  return `/${trimmed}`.replace(/^\/params\//, '/path/').replace(/^\/headers\//, '/header/');
}

const MALFORMED_URI = /^malformed uri/;

/**
 * Validation collects every error (allErrors), so one 16 kB body can fail thousands of times; listing them all
 * (in errors[] and again in the detail) made answers fifty times the size of the request. The first ones are
 * listed and the rest counted.
 */
export const MAX_LISTED_ERRORS = 20;

const BODY_PARSER_MAP: Record<string, [number, string]> = {
  'entity.parse.failed': [400, 'The request body is not valid JSON.'],
  'entity.too.large': [413, 'The request body is larger than this operation accepts.'],
  'entity.verify.failed': [400, 'The request body could not be verified.'],
  'encoding.unsupported': [415, 'The request body encoding is not supported.'],
  'charset.unsupported': [415, 'The request body charset is not supported; send UTF-8.'],
  'request.aborted': [400, 'The request was aborted by the client.'],
  'request.size.invalid': [400, 'The request body length does not match Content-Length.'],
  'parameters.too.many': [413, 'The request has too many parameters.'],
  'stream.encoding.set': [500, 'The server could not read the request body.'],
};

/**
 * The content codings body-parser inflates (identity aside): gzip, deflate and br, and zstd where Node has it
 * (22.15 and later). Any other is answered 415 with these in Accept-Encoding (RFC 9110, 12.5.3 and 15.5.16).
 */
export const ACCEPTED_CONTENT_CODINGS: readonly string[] = [
  'gzip',
  'deflate',
  'br',
  ...(typeof (zlib as { createZstdDecompress?: unknown }).createZstdDecompress === 'function'
    ? ['zstd']
    : []),
];

/**
 * zlib's error for a body that is not what its Content-Encoding says, passed on by body-parser without a `type`:
 * `Z_…` from gzip and deflate (and from brotli for a body that ends too soon), `ERR__ERROR_…` from brotli's decoder.
 */
const DECODING_ERROR_CODE = /^(Z_|ERR__ERROR_)/;

const JSON_ERROR_POSITION = /\bat position (\d+)/;

export interface Rendered {
  status: number;
  body: ReturnType<typeof problemBody>;
  headers: Record<string, string>;
  /** Whether the failure is ours (logged as an error) rather than the client's. */
  serverFault: boolean;
}

export function renderError(err: unknown, req: Request): Rendered {
  const base = { instance: req.path, requestId: String(req.id ?? '') || undefined };
  if (err instanceof ProblemError) {
    const { headers = {}, cause: _cause, ...extras } = err.extras;
    return {
      status: err.status,
      body: problemBody(err.status, { ...base, detail: err.detail, ...extras }),
      headers,
      serverFault: err.status === 500,
    };
  }
  if (err instanceof StoreUnavailableError) {
    // Retryable: a write that reaches here is keyed (request_id, Idempotency-Key), so a retry of a request whose
    // COMMIT went unanswered finds what it did instead of doing it again. Writes with no key whose outcome is unknown
    // (a refund without request_id, a confirmed payment intent without Idempotency-Key) are answered by their
    // services as a ProblemError 503 without Retry-After instead.
    const retryAfter = 1;
    return {
      status: 503,
      body: problemBody(503, {
        ...base,
        detail: 'The service could not reach its database in time. Retry later with the same request.',
        code: err.code,
        retry_after: retryAfter,
      }),
      headers: { 'Retry-After': String(retryAfter) },
      serverFault: false,
    };
  }
  if (isBodyParserError(err)) {
    const [status, known] = BODY_PARSER_MAP[err.type] ?? [400, 'The request body could not be read.'];
    // Where the body goes wrong, so a client can find its mistake (a single quote, a trailing comma); only the
    // number is taken from JSON.parse's message, which can quote the body's text.
    const position = err.type === 'entity.parse.failed' ? JSON_ERROR_POSITION.exec(err.message) : null;
    const detail = position
      ? `The request body is not valid JSON: it goes wrong at character ${Number(position[1]) + 1}.`
      : known;
    const unsupportedCoding = err.type === 'encoding.unsupported';
    return {
      status,
      body: problemBody(status, {
        ...base,
        detail,
        ...(unsupportedCoding ? { code: 'content_encoding_unsupported' } : {}),
      }),
      headers: unsupportedCoding ? { 'Accept-Encoding': ACCEPTED_CONTENT_CODINGS.join(', ') } : {},
      serverFault: status >= 500,
    };
  }
  if (isValidatorError(err) && err.status >= 400 && err.status < 500) {
    const all = err.errors ?? [];
    const errors: FieldError[] = all.slice(0, MAX_LISTED_ERRORS).map((e) =>
      // The validator names the whole URL path and says "malformed uri'" when a path segment is not
      // valid percent-encoding (e.g. %ZZ): point at the path instead.
      MALFORMED_URI.test(e.message ?? '')
        ? { path: '/path', message: 'is not valid percent-encoding' }
        : {
            path: toPointer(e.path),
            message: e.message ?? 'is invalid',
            ...(e.errorCode ? { code: e.errorCode } : {}),
          },
    );
    const unlisted = all.length - errors.length;
    const detail =
      err.status === 400
        ? (errors.map((e) => `${e.path.slice(1) || 'request'} ${e.message}`).join('; ') ||
            'The request is invalid.') + (unlisted > 0 ? `; and ${unlisted} more` : '')
        : err.status === 404
          ? `No operation at ${methodAsSent(req)} ${req.path}.`
          : err.status === 405
            ? `${methodAsSent(req)} is not allowed on ${req.path}.`
            : err.status === 415
              ? 'Unsupported Content-Type; send application/json.'
              : err.message;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(err.headers ?? {})) headers[k] = String(v);
    const code =
      err.status === 401 ? 'unauthenticated' : err.status === 403 ? 'insufficient_scope' : undefined;
    if (err.status === 401) headers['WWW-Authenticate'] = 'Bearer';
    return {
      status: err.status,
      body: problemBody(err.status, {
        ...base,
        detail,
        ...(code ? { code } : {}),
        ...(err.status === 400 ? { errors } : {}),
      }),
      headers,
      serverFault: false,
    };
  }
  if (isExposedClientError(err)) {
    const compressed = typeof err.code === 'string' && DECODING_ERROR_CODE.test(err.code);
    const detail = compressed
      ? 'The request body is not valid data for its Content-Encoding.'
      : 'The request could not be read.';
    return {
      status: err.status,
      body: problemBody(err.status, { ...base, detail }),
      headers: {},
      serverFault: false,
    };
  }
  return {
    status: 500,
    body: problemBody(500, { ...base, detail: 'The server could not complete the request.' }),
    headers: {},
    serverFault: true,
  };
}

export function sendProblem(res: Response, rendered: Omit<Rendered, 'serverFault'>): void {
  if (res.headersSent) return;
  // A problem found before securityHeaders ran (the request target, Host) has none of them yet; one of those quotes
  // the Host it was sent. A page's own (helmet's, set already) are kept.
  if (!res.hasHeader('X-Content-Type-Options'))
    for (const [name, value] of API_HEADERS) res.setHeader(name, value);
  for (const [k, v] of Object.entries(rendered.headers)) res.setHeader(k, v);
  res.status(rendered.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(rendered.body));
}

/** Renders and logs an error; the caller decides whether to send it (see dispatch's idempotency). */
export function renderAndLog(err: unknown, req: Request): Rendered {
  const rendered = renderError(err, req);
  if (rendered.serverFault) req.log.error({ err }, 'request failed');
  else if (rendered.status >= 502) req.log.warn({ err }, 'upstream failure');
  else req.log.debug({ err, status: rendered.status }, 'request rejected');
  return rendered;
}

export const errorHandler: ErrorRequestHandler = (err, req, res, next) => {
  if (res.headersSent) {
    // A timeout answered first; the late outcome is logged, not sent.
    if (res.writableEnded) req.log.warn({ err }, 'error after the response was sent');
    else next(err);
    return;
  }
  sendProblem(res, renderAndLog(err, req));
};

export const notFound: RequestHandler = (req, _res, next) => {
  next(new ProblemError(404, `No operation at ${methodAsSent(req)} ${req.path}.`));
};
