/**
 * Routes a validated request to its handler by operationId (resolved by express-openapi-validator
 * from openapi.yaml), so there is no second, hand-written route table to drift from the contract.
 * POSTs carrying an Idempotency-Key are answered once and replayed after, as Stripe does it.
 */
import { hash as digest } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import type { IdempotencyRepo } from '../store/index.js';
import { renderAndLog, sendProblem } from './errors.js';
import {
  idempotencyScope,
  type Caller,
  type Handlers,
  type Input,
  type OperationId,
  type RequestContext,
} from './operations.js';
import { PROBLEM_CONTENT_TYPE, ProblemError } from './problem.js';

interface OpenApiRequestMeta {
  schema?: { operationId?: string };
  pathParams?: Record<string, string>;
}

export const ANONYMOUS: Caller = Object.freeze({ owner: '', keyId: null, scopes: Object.freeze([]) });

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export function contextOf(req: Request): RequestContext {
  const key = req.get('idempotency-key');
  return {
    requestId: String(req.id),
    // A getter, so the request's child logger (and its redaction) is built only when a handler logs.
    get log() {
      return req.log;
    },
    caller: (req as Request & { caller?: Caller }).caller ?? ANONYMOUS,
    idempotencyKey: key === undefined ? undefined : key,
  };
}

export function operationIdOf(req: Request): OperationId | undefined {
  const meta = (req as Request & { openapi?: OpenApiRequestMeta }).openapi;
  return meta?.schema?.operationId as OperationId | undefined;
}

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export function sendReply(res: Response, reply: Reply) {
  if (res.headersSent) return; // a timeout answered already
  for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
  if (reply.body === undefined) res.status(reply.status).end();
  else if (typeof reply.body === 'string') {
    if (!res.getHeader('content-type')) res.type('text/plain');
    res.status(reply.status).send(reply.body);
  } else res.status(reply.status).json(reply.body);
}

/** Stable JSON (sorted keys) so the same body always hashes the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export interface DispatchOptions {
  /** Where Idempotency-Key results live; without it the header is accepted but has no effect. */
  idempotency?: IdempotencyRepo;
}

export function dispatch(handlers: Handlers, opts: DispatchOptions): RequestHandler {
  return async (req, res, next) => {
    const operationId = operationIdOf(req);
    if (!operationId) {
      next();
      return;
    }
    const meta = (req as Request & { openapi?: OpenApiRequestMeta }).openapi;
    const ctx = contextOf(req);
    const input = {
      body: req.body,
      query: req.query,
      path: meta?.pathParams ?? req.params,
      headers: req.headers,
      ctx,
    } as unknown as Input<typeof operationId>;
    const handler = handlers[operationId] as (i: typeof input) => Promise<Reply>;

    const store = opts.idempotency;
    const idemKey = store && req.method === 'POST' ? ctx.idempotencyKey : undefined;
    const idemScope = idempotencyScope(ctx.caller);
    if (idemKey !== undefined) {
      const hash = digest('sha256', `${operationId}\n${canonical(req.body)}`, 'hex');
      const begun = await store!.begin(idemScope, idemKey, hash, IDEMPOTENCY_TTL_MS);
      if (begun.kind === 'replay') {
        res.setHeader('Idempotent-Replayed', 'true');
        if (begun.status >= 400) {
          res.status(begun.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(begun.body));
        } else sendReply(res, { status: begun.status, body: begun.body });
        return;
      }
      if (begun.kind === 'mismatch') {
        throw new ProblemError(422, 'This Idempotency-Key was used with a different request.', {
          code: 'idempotency_key_reused',
        });
      }
      if (begun.kind === 'in_progress') {
        throw new ProblemError(
          409,
          'A request with this Idempotency-Key is still in progress; retry shortly.',
          {
            code: 'idempotency_key_in_use',
            retry_after: 1,
            headers: { 'Retry-After': '1' },
          },
        );
      }
    }

    let reply: Reply;
    try {
      reply = await handler(input);
    } catch (err) {
      const rendered = renderAndLog(err, req);
      if (idemKey !== undefined) {
        // A 5xx may be retried by the client, and so may an answer that says when to retry (another request is
        // still running); a definite answer (any other 4xx) is kept like a success.
        if (rendered.status >= 500 || rendered.body.retry_after !== undefined)
          await store!.abandon(idemScope, idemKey).catch(() => undefined);
        else await store!.complete(idemScope, idemKey, rendered.status, rendered.body);
      }
      if (!res.headersSent) sendProblem(res, rendered);
      return;
    }
    if (idemKey !== undefined) await store!.complete(idemScope, idemKey, reply.status, reply.body);
    sendReply(res, reply);
  };
}
