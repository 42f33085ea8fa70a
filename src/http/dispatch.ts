/**
 * Routes a validated request to its handler by operationId (resolved by express-openapi-validator
 * from openapi.yaml), so there is no second, hand-written route table to drift from the contract.
 * POSTs carrying an Idempotency-Key are answered once and replayed after, as Stripe does it.
 */
import { hash as digest } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Request, RequestHandler, Response } from 'express';
import Stripe from 'stripe';
import { REQUEST_AS_TAKEN } from '../payments/as-taken.js';
import {
  IN_PROGRESS_STALE_MS,
  StoreUnavailableError,
  type IdempotencyBegin,
  type IdempotencyRepo,
} from '../store/index.js';
import { newIdempotencyClaim } from '../store/idempotency-repo.js';
import { holdWork } from './admission.js';
import { renderAndLog, sendProblem } from './errors.js';
import {
  idempotencyScope,
  type Caller,
  type Handlers,
  type Input,
  type OperationId,
  type ReplayBuilder,
  type RequestContext,
} from './operations.js';
import { PROBLEM_CONTENT_TYPE, ProblemError } from './problem.js';
import { keyCheckFailure, noteGeneratedRefundId } from './security.js';

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
    keyCheckFailure: keyCheckFailure(req),
    noteRefundRequestId: refundIdNoter(req),
  };
}

/**
 * Made apart so that the function is anonymous: the bundle (esbuild's keepNames) gives a function literal named by
 * its property a defineProperty on every request.
 */
function refundIdNoter(req: Request): (id: string) => void {
  return (id) => noteGeneratedRefundId(req, id);
}

export function operationIdOf(req: Request): OperationId | undefined {
  const meta = (req as Request & { openapi?: OpenApiRequestMeta }).openapi;
  return meta?.schema?.operationId as OperationId | undefined;
}

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  replayBody?: unknown;
}

export function sendReply(res: Response, reply: Reply) {
  if (res.headersSent) return; // a timeout answered already
  if (reply.headers) for (const k in reply.headers) res.setHeader(k, reply.headers[k]!);
  if (reply.body === undefined) res.status(reply.status).end();
  else if (typeof reply.body === 'string') {
    if (!res.getHeader('content-type')) res.type('text/plain');
    res.status(reply.status).send(reply.body);
  } else if (!sendJson(res, reply.status, reply.body)) res.status(reply.status).json(reply.body);
}

/** What res.json's Content-Type becomes (mime-types' contentType of 'application/json'). */
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * Writes a JSON answer as res.json writes it (the same Content-Type, Content-Length in bytes, no body for HEAD),
 * without res.json's and res.send's work: each looks the app's settings up, sets Content-Type twice (parsing it
 * and looking the charset up each time) and checks the request's freshness. Only for an answer res.json would
 * write so: the app has no JSON settings nor ETags (buildApp), the answer no Content-Type yet, its status has a
 * body, the request is not conditional (res.send could answer it 304), and nothing has replaced res.json on this
 * response. Anything else answers false, and res.json writes it.
 */
function sendJson(res: Response, status: number, body: unknown): boolean {
  const req = res.req;
  if (
    status < 200 ||
    status === 204 ||
    status === 205 ||
    status === 304 ||
    req.headers['if-none-match'] !== undefined ||
    req.headers['if-modified-since'] !== undefined ||
    res.hasHeader('content-type') ||
    res.hasHeader('transfer-encoding') ||
    // res.json replaced on this response: something checks or changes what it answers (express-openapi-validator's
    // response validation, VALIDATE_RESPONSES, hooks it so), which writing the answer here would go around.
    Object.prototype.hasOwnProperty.call(res, 'json') ||
    !plainJsonApp(res.app)
  )
    return false;
  const json = JSON.stringify(body);
  if (typeof json !== 'string') return false;
  res.status(status);
  res.setHeader('Content-Type', JSON_CONTENT_TYPE);
  res.setHeader('Content-Length', Buffer.byteLength(json));
  // As res.send: HEAD is routed as GET (buildApp), and Node leaves a HEAD answer's body out itself.
  if (req.method === 'HEAD') res.end();
  else res.end(json, 'utf8');
  return true;
}

/** Whether res.json would write the answer as sendJson does: the app has no JSON settings and no ETags. */
function plainJsonApp(app: Response['app']): boolean {
  return (
    !app.get('json replacer') &&
    !app.get('json spaces') &&
    !app.get('json escape') &&
    typeof app.get('etag fn') !== 'function'
  );
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

/** What an Idempotency-Key remembers of a request: its operation and body (`body` as the service takes it). */
function requestHash(operationId: OperationId, body: unknown): string {
  return digest('sha256', `${operationId}\n${canonical(body)}`, 'hex');
}

/**
 * The hash an Idempotency-Key keeps for this request, and the one it is also known by: the body is compared as the
 * service takes it (REQUEST_AS_TAKEN: `"currency": "USD"` is `"usd"`), so that a retry of the same payment written
 * otherwise is the same request. Versions before compared the body as sent: a key one of them kept, for a body the
 * service takes otherwise, is known by the hash of that body as sent (as before, another spelling of it gets 422
 * from such a key). Only such a body is hashed twice.
 */
function requestHashes(operationId: OperationId, body: unknown): string | readonly [string, string] {
  const asTaken = REQUEST_AS_TAKEN[operationId];
  const taken = asTaken ? asTaken(body as never) : body;
  const hash = requestHash(operationId, taken);
  return taken === body ? hash : [hash, requestHash(operationId, body)];
}

/** Waits between further tries of a key's last write that failed; the last one repeats. */
const SETTLE_RETRY_DELAYS_MS = [250, 500, 1_000, 2_000, 5_000];
/** Stop trying well before a retry could take the claim over as stale (it may have, on another process). */
const SETTLE_WINDOW_MS = IN_PROGRESS_STALE_MS - 60_000;

/**
 * Runs a key's last write (complete or abandon). When the database cannot take it (the outage that may have
 * failed the request itself), it is tried again in the background until it can, instead of leaving the key
 * in progress: a retry would get 409 idempotency_key_in_use until the claim went stale, ten minutes later,
 * however soon the database came back. Never throws. `claimedAt`: performance.now() when the key was claimed.
 */
async function settleKey(write: () => Promise<unknown>, req: Request, claimedAt: number): Promise<void> {
  const log = req.log;
  let attempt = 0;
  // Anything but an outage (a store closed under a stopping service, a bug) would fail the same way again.
  const failed = (err: unknown) => {
    const delay = SETTLE_RETRY_DELAYS_MS[Math.min(attempt++, SETTLE_RETRY_DELAYS_MS.length - 1)]!;
    if (!(err instanceof StoreUnavailableError) || performance.now() + delay > claimedAt + SETTLE_WINDOW_MS) {
      log.warn({ err, attempts: attempt }, 'Idempotency-Key left in progress until the claim is stale');
      return;
    }
    if (attempt === 1) log.warn({ err }, 'Idempotency-Key not settled; trying again in the background');
    setTimeout(() => {
      write().then(() => log.info({ attempts: attempt + 1 }, 'Idempotency-Key settled'), failed);
    }, delay).unref();
  };
  await write().catch(failed);
}

/**
 * A claim younger than this may belong to a request still running (REQUEST_TIMEOUT_MS, 30 s by default, cuts off
 * its answer, and its Stripe call may run on a little longer); an older one most likely to a process that died.
 */
const LIVE_CLAIM_MS = 60_000;

/**
 * When to retry a key held by another request: in a second while that request may still be running; once it has
 * held the key longer than any live request would, when the claim goes stale and a retry takes it over (rather
 * than a retry every second for up to ten minutes after a crash).
 */
export function inProgressAdvice(
  since: string | undefined,
  now = Date.now(),
): { retryAfter: number; detail: string } {
  const age = since === undefined ? 0 : now - Date.parse(since);
  if (!(age >= LIVE_CLAIM_MS)) {
    return {
      retryAfter: 1,
      detail: 'A request with this Idempotency-Key is still in progress; retry shortly.',
    };
  }
  const retryAfter = Math.max(1, Math.ceil((IN_PROGRESS_STALE_MS - age) / 1000));
  return {
    retryAfter,
    detail:
      `A request with this Idempotency-Key has held it for ${Math.floor(age / 1000)} s without finishing; its ` +
      `process has most likely stopped. A retry in ${retryAfter} s takes the key over and finishes the request ` +
      '(nothing is done twice).',
  };
}

export interface DispatchOptions {
  /** Where Idempotency-Key results live; without it the header is accepted but has no effect. */
  idempotency?: IdempotencyRepo;
  /** Per operation that keeps a replayBody: how a replay's answer is rebuilt from it. */
  replays?: Partial<Record<OperationId, ReplayBuilder>>;
  /**
   * Called as a request's work begins (its Idempotency-Key's claim to its last write); the function it answers is
   * called once that work has ended, answered or not. The service waits for it at shutdown before closing the store.
   */
  onWork?: () => () => void;
}

/** Whether `err` is, or was caused by, an error of Stripe's (an answer Stripe gave, or its failure to answer). */
function fromStripe(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof Stripe.errors.StripeError) return true;
  }
  return false;
}

/**
 * A problem that says nothing was done under the key, which Stripe does not keep either: a key keeps a result
 * only once the endpoint began executing, not a refusal of the parameters, nor a conflict with another use of the
 * key (docs.stripe.com/api/idempotent_requests). Kept, the corrected request under the key got 422 for a day
 * (the service's own 400, amount_not_rounded, is given before any money is reserved or Stripe called); and a
 * 422 idempotency_key_reused (Stripe's, for a key whose record here a 5xx had freed and that came back with
 * another body; or the refund ledger's) was then the answer to the key's own first body too, which could never
 * again learn what was made under it.
 */
function doneNothing(err: unknown, rendered: { status: number; body: { code?: string } }): boolean {
  if (rendered.body.code === 'idempotency_key_reused') return true;
  return rendered.status === 400 && !fromStripe(err);
}

/**
 * Whether the request was answered (by the timeout) or given up by its client before its handler started, after
 * waiting on a busy database for its key lookup or its Idempotency-Key. Its client was told to retry (or is gone):
 * running it now could charge a card twice, and under load it takes time from requests that can still be answered.
 */
function answeredAlready(req: Request, res: Response): boolean {
  if (!res.headersSent && !req.socket.destroyed) return false;
  req.log.info('request answered (or abandoned by its client) before its handler started; not run');
  return true;
}

export function dispatch(handlers: Handlers, opts: DispatchOptions): RequestHandler {
  return async (req, res, next) => {
    const operationId = operationIdOf(req);
    if (!operationId) {
      next();
      return;
    }
    // The request counts against the cap on requests at work until its handler is done, answered or not.
    const done = holdWork(req);
    const workDone = opts.onWork?.();
    try {
      await run(req, res, operationId);
    } finally {
      done();
      workDone?.();
    }
  };

  async function run(req: Request, res: Response, operationId: OperationId): Promise<void> {
    if (answeredAlready(req, res)) return;
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
    // Elapsed time (performance.now()), not the wall clock: a step of the clock forward during an outage would end
    // settleKey's tries at once, leaving the key in progress and the client's retry refused until it goes stale.
    const claimedAt = performance.now();
    // What the claim is known by (its time and a random token): the key's last write acts on this request's claim
    // only, not on one a retry took over after this one went stale (a process paused for longer than
    // IN_PROGRESS_STALE_MS), nor on one a retry made after this one's abandon, even in the same millisecond.
    // Made only for a request with a key (a random token a request costs).
    const claim = idemKey !== undefined ? newIdempotencyClaim() : undefined;
    if (idemKey !== undefined && claim !== undefined) {
      const hashes = requestHashes(operationId, req.body);
      let begun: IdempotencyBegin;
      try {
        begun = await store!.begin(idemScope, idemKey, hashes, IDEMPOTENCY_TTL_MS, claim);
      } catch (err) {
        // The claim may have been written with its answer lost (the connection dropped at the commit). Left
        // so, the retry the 503 asks for would get 409 idempotency_key_in_use until the claim went stale, ten
        // minutes on; it is released once the database takes it, while the 503 goes out at once.
        if (err instanceof StoreUnavailableError)
          void settleKey(() => store!.abandon(idemScope, idemKey, claim!), req, claimedAt);
        throw err;
      }
      if (begun.kind === 'replay') {
        // The timeout may have answered while the key was looked up (or the answer rebuilt): nothing more to send.
        if (res.headersSent) return;
        if (begun.status >= 400) {
          // The problem as first answered, but for its request_id: this answer's, as X-Request-Id says (the
          // contract has them equal; the stored one named the first request, and the answer had two ids).
          const stored = begun.body as Record<string, unknown> | null;
          const body =
            stored !== null && typeof stored === 'object' && 'request_id' in stored
              ? { ...stored, request_id: String(req.id) }
              : stored;
          res.setHeader('Idempotent-Replayed', 'true');
          res.status(begun.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(body));
          return;
        }
        // Rebuilt first: should that fail (Stripe unreachable), its problem is no replay.
        const rebuild = opts.replays?.[operationId];
        const body = rebuild ? await rebuild(begun.body, ctx) : begun.body;
        if (res.headersSent) return;
        res.setHeader('Idempotent-Replayed', 'true');
        sendReply(res, { status: begun.status, body });
        return;
      }
      if (begun.kind === 'mismatch') {
        throw new ProblemError(422, 'This Idempotency-Key was used with a different request.', {
          code: 'idempotency_key_reused',
        });
      }
      if (begun.kind === 'in_progress') {
        const { retryAfter, detail } = inProgressAdvice(begun.since);
        throw new ProblemError(409, detail, {
          code: 'idempotency_key_in_use',
          retry_after: retryAfter,
          headers: { 'Retry-After': String(retryAfter) },
        });
      }
    }

    // Claiming the key waited on the database too.
    if (answeredAlready(req, res)) {
      if (idemKey !== undefined)
        await settleKey(() => store!.abandon(idemScope, idemKey, claim!), req, claimedAt);
      return;
    }

    let reply: Reply;
    try {
      reply = await handler(input);
    } catch (err) {
      const rendered = renderAndLog(err, req);
      if (idemKey !== undefined) {
        // An answer that says nothing was done is not kept, and the key is free for any body (see doneNothing). A
        // 5xx may be retried by the client, and so may an answer that says when to retry (another request is still
        // running): not kept either, but something may have been done under the key (a refund handed to the
        // worker), so the key stays bound to this body, as Stripe keeps a key bound to its first parameters: the
        // same body retried runs again, another gets 422 (freed, a retry that rebuilt its body with a new
        // request_id made a second refund). A definite answer (any other 4xx) is kept like a success.
        const write = doneNothing(err, rendered)
          ? () => store!.abandon(idemScope, idemKey, claim!)
          : rendered.status >= 500 || rendered.body.retry_after !== undefined
            ? () => store!.release(idemScope, idemKey, claim!)
            : () => store!.complete(idemScope, idemKey, rendered.status, rendered.body, claim!);
        await settleKey(write, req, claimedAt);
      }
      if (!res.headersSent) sendProblem(res, rendered);
      return;
    }
    // The work is done (money may have moved): its answer goes out even when storing it for replays fails.
    if (idemKey !== undefined)
      await settleKey(
        () => store!.complete(idemScope, idemKey, reply.status, reply.replayBody ?? reply.body, claim!),
        req,
        claimedAt,
      );
    sendReply(res, reply);
  }
}
