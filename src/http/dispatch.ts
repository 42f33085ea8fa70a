/**
 * Routes a validated request to its handler by operationId (resolved by express-openapi-validator
 * from openapi.yaml), so there is no second, hand-written route table to drift from the contract.
 */
import type { Request, RequestHandler, Response } from 'express';
import type { Caller, Handlers, Input, OperationId, RequestContext } from './operations.js';

interface OpenApiRequestMeta {
  schema?: { operationId?: string };
  pathParams?: Record<string, string>;
}

export const ANONYMOUS: Caller = Object.freeze({ owner: '', keyId: null, scopes: Object.freeze([]) });

export function contextOf(req: Request): RequestContext {
  const key = req.get('idempotency-key');
  return {
    requestId: String(req.id),
    log: req.log,
    caller: (req as Request & { caller?: Caller }).caller ?? ANONYMOUS,
    idempotencyKey: key === undefined ? undefined : key,
  };
}

export function operationIdOf(req: Request): OperationId | undefined {
  const meta = (req as Request & { openapi?: OpenApiRequestMeta }).openapi;
  return meta?.schema?.operationId as OperationId | undefined;
}

export function sendReply(
  res: Response,
  reply: { status: number; body: unknown; headers?: Record<string, string> },
) {
  for (const [k, v] of Object.entries(reply.headers ?? {})) res.setHeader(k, v);
  if (reply.body === undefined) res.status(reply.status).end();
  else res.status(reply.status).json(reply.body);
}

export function dispatch(handlers: Handlers): RequestHandler {
  return async (req, res, next) => {
    const operationId = operationIdOf(req);
    if (!operationId) {
      next();
      return;
    }
    const meta = (req as Request & { openapi?: OpenApiRequestMeta }).openapi;
    const input = {
      body: req.body,
      query: req.query,
      path: meta?.pathParams ?? req.params,
      headers: req.headers,
      ctx: contextOf(req),
    } as unknown as Input<typeof operationId>;
    const handler = handlers[operationId] as (i: typeof input) => Promise<Parameters<typeof sendReply>[1]>;
    sendReply(res, await handler(input));
  };
}
