/**
 * The typed contract: every operation in openapi.yaml gets exactly one handler whose input and
 * status-keyed output come from generated/openapi.ts. A missing operation, an undocumented status or a
 * mis-shaped body is a compile error, not a production surprise.
 */
import type { Logger } from 'pino';
import type { operations } from '../../generated/openapi.js';
import { ProblemError } from './problem.js';

export type OperationId = keyof operations;
type Op<O extends OperationId> = operations[O];

/** Operations whose handler needs the exact request bytes (signature checks), not parsed JSON. */
export type RawBodyOperationId = 'handleStripeWebhook';

type JsonOf<R> = R extends { content: { 'application/json': infer B } }
  ? B
  : R extends { content: { 'text/plain': infer T } }
    ? T
    : undefined;
type Present<T> = [NonNullable<T>] extends [never] ? Record<string, never> : NonNullable<T>;
type Params<O extends OperationId> = Op<O>['parameters'];

export type RequestBodyOf<O extends OperationId> = O extends RawBodyOperationId
  ? Buffer
  : Op<O> extends { requestBody: infer RB }
    ? JsonOf<RB>
    : Op<O> extends { requestBody?: infer RB }
      ? JsonOf<NonNullable<RB>> | undefined
      : undefined;

/** Who is calling; filled by the authentication layer. */
export interface Caller {
  /** Owner of the data this caller may see (an API key's owner). */
  readonly owner: string;
  readonly keyId: string | null;
  readonly scopes: readonly string[];
  /** Publishable keys are public (they sit in web pages); absent without a key. */
  readonly kind?: 'secret' | 'publishable';
  /** A publishable key's caller: the client's address, as the rate limiter keys it (IPv6 by its /56). */
  readonly client?: string;
  /**
   * A publishable key's caller when OWNER_ORIGINS is set: its owner's origins, the only ones its checkouts may send
   * customers back to (empty: the owner is not listed). Absent: CORS_ORIGINS, the same for every owner.
   */
  readonly origins?: readonly string[];
}

/**
 * Whose Idempotency-Keys a caller's are: its owner's, but a publishable key's own, per client address.
 * - A publishable key is public, so sharing keys with the owner's secret keys would let anyone claim (422) or
 *   replay (client secret included) the server's keys, or take over the Stripe idempotency key derived from one.
 * - Every customer's browser holds the same publishable key, so one scope for the key let anyone who learnt or
 *   guessed another browser's Idempotency-Key, and sent the same body, be answered with that browser's payment
 *   intent, client secret included. Each client address has its own; a browser retrying from a new address
 *   makes a new, unconfirmed payment intent, which moves no money.
 * Owners never hold '#'; key ids never hold '@'.
 */
export function idempotencyScope(caller: Caller): string {
  return caller.kind === 'publishable'
    ? `${caller.owner}#${caller.keyId}@${caller.client ?? ''}`
    : caller.owner;
}

export interface RequestContext {
  readonly requestId: string;
  readonly log: Logger;
  readonly caller: Caller;
  /** The Idempotency-Key header, when the client sent one. */
  readonly idempotencyKey: string | undefined;
  /** Why the API key sent could not be checked, when the operation let the request in without one (/metrics). */
  readonly keyCheckFailure?: unknown;
  /**
   * Notes the request_id the service generated for a refund request that named none (and had no Idempotency-Key),
   * for the request timeout's answer to name (see timeoutAdvice in security.ts).
   */
  readonly noteRefundRequestId?: (requestId: string) => void;
}

export interface Input<O extends OperationId> {
  body: RequestBodyOf<O>;
  query: Present<Params<O>['query']>;
  path: Present<Params<O>['path']>;
  headers: Present<Params<O>['header']>;
  ctx: RequestContext;
}

/**
 * Statuses a handler may return: every documented one with a JSON or text body (plus 204). Problem
 * responses (application/problem+json) are produced by throwing ProblemError, never returned.
 */
type StatusOf<O extends OperationId> = {
  [S in keyof Op<O>['responses']]: S extends 'default'
    ? never
    : S extends 204
      ? S
      : [JsonOf<Op<O>['responses'][S]>] extends [undefined]
        ? never
        : S;
}[keyof Op<O>['responses']];

export type Reply<O extends OperationId> = {
  [S in StatusOf<O>]: {
    status: S;
    body: JsonOf<Op<O>['responses'][S]>;
    headers?: Record<string, string>;
    /**
     * What an Idempotency-Key keeps for replays instead of `body`, when the body holds what must not be stored
     * (a client secret); the operation's ReplayBuilder turns it back into the answer.
     */
    replayBody?: unknown;
  };
}[StatusOf<O>];

/** Rebuilds a replayed answer from what was kept for it (Reply.replayBody); may ask Stripe again. */
export type ReplayBuilder = (kept: unknown, ctx: RequestContext) => Promise<unknown>;

export type Handler<O extends OperationId> = (input: Input<O>) => Promise<Reply<O>>;
export type Handlers = { [O in OperationId]: Handler<O> };

/** Placeholder for an operation whose feature has not landed: a clear 501, never a silent 200. */
export function notImplemented<O extends OperationId>(operationId: O): Handler<O> {
  return async () => {
    throw new ProblemError(501, `Operation ${operationId} is not implemented yet.`, {
      code: 'not_implemented',
    });
  };
}
