/**
 * One refund service for the synchronous and the queued path. Money rules live here:
 * - a refund never exceeds what is left, counting refunds still in flight (checked under a row lock);
 * - every Stripe call carries the idempotency key `refund:<request key>`, so retries, redeliveries and
 *   crashes never refund twice;
 * - status only moves forward (the store enforces it in one conditional UPDATE).
 */
import { hash, randomUUID } from 'node:crypto';
import Stripe from 'stripe';
import type { Logger } from 'pino';
import type { components } from '../../generated/openapi.js';
import type { Caller } from '../http/operations.js';
import { ProblemError } from '../http/problem.js';
import { refundAsTaken } from '../payments/as-taken.js';
import {
  isOpenMode,
  requireAmountFitsCurrency,
  requireAmountWithinMax,
  requireMetadataFits,
  type PaymentsService,
} from '../payments/service.js';
import {
  DuplicateKeyError,
  RELEASED_REFUND_STATUSES,
  StoreUnavailableError,
  isRefundStatus,
  isTerminalRefundStatus,
  type NewOutboxMessage,
  type NewRefund,
  type OutboxMessage,
  type Refund,
  type RefundStatus,
  type Repos,
  type Store,
} from '../store/index.js';
import { leased, type OutboxHandOff } from '../queue/outbox-relay.js';
import { REQUEST_ID_HEADER } from '../queue/topology.js';
import { minorUnitStep } from '../money/currencies.js';
import { logContextOptions, withoutCallSite, type StripeClient } from '../stripe/client.js';
import {
  classifyStripeError,
  isIdempotencyKeyInUse,
  isSavedServerError,
  isTransientStripeError,
  overRefundCode,
  toProblem,
} from '../stripe/errors.js';

export interface RefundInput {
  payment_intent_id: string;
  amount?: number;
  reason?: 'duplicate' | 'fraudulent' | 'requested_by_customer';
  request_id?: string;
  metadata?: Record<string, string>;
}

export interface RefundTopology {
  /** Queue the worker consumes refund requests from. */
  requests: string;
  /** Queue other services read refund outcomes from. */
  responses: string;
}

export interface RefundServiceDeps {
  store: Store;
  stripe: StripeClient;
  payments: PaymentsService;
  logger: Logger;
  topology: RefundTopology;
  /**
   * Told, after the commit, each time this process moved a refund into a final status (succeeded, failed,
   * canceled): metrics count the outcomes here, where the move happened, so each is counted once.
   */
  onFinal?: (refund: Refund) => void;
  /**
   * This process's outbox relay. The request message of an accepted async refund and the outcome message
   * of an attempt the worker settles are handed to it after their commit (or, when it cannot take one, it
   * is woken), so they are published without a claim.
   */
  outbox?: OutboxHandOff;
  /**
   * How long one attempt's Stripe call can last at most (the SDK's timeout times its tries, its backoff between
   * them, and a margin): a synchronous refund `processing` with no Stripe id whose last attempt began longer ago
   * has no call of that attempt still at work, and a retry of its request takes it over (see refundNow).
   */
  attemptWindowMs?: number;
}

/** attemptWindowMs for a Stripe client with this timeout and these retries (stripe-node waits at most 5 s between). */
export function attemptWindowMs(stripeTimeoutMs: number, maxNetworkRetries: number): number {
  return stripeTimeoutMs * (maxNetworkRetries + 1) + maxNetworkRetries * 5_000 + 1_000;
}

/** Message on the requests queue: only our key; everything else is read from the ledger. */
export type RefundRequestMessage = components['schemas']['RefundRequestMessage'];

/**
 * Outcome message on the responses queue, typed from the contract (`RefundOutcomeMessage` in openapi.yaml), so a
 * field the contract and the message disagree on fails to compile.
 */
export type RefundOutcomeMessage = components['schemas']['RefundOutcomeMessage'];

/** Why a refund was queued, in its request message's id: accepted by POST /refund-async. */
const ACCEPTED = 'accept';
/** Handed to the worker by a POST /refund whose call Stripe did not answer. */
const HANDED_OVER = 'sync-handoff';

/**
 * The outbox row that queues refund `key` on `queue`. `attemptHint` says why it was queued (the message id is
 * `<key>#<attemptHint>`); `reqId`, the id of the HTTP request that asked for the refund, travels in the
 * REQUEST_ID_HEADER header, so that the worker's lines about the refund carry it.
 */
export function refundRequestMessage(
  queue: string,
  key: string,
  attemptHint: string,
  reqId: string | undefined,
): NewOutboxMessage {
  return {
    destination: queue,
    routingKey: queue,
    messageId: `${key}#${attemptHint}`,
    payload: { request_key: key } satisfies RefundRequestMessage,
    ...(reqId !== undefined && { headers: { [REQUEST_ID_HEADER]: reqId } }),
  };
}

/**
 * The ids of the messages an HTTP request queues refund `key` under (POST /refund-async's, or POST /refund's
 * hand-over): a later copy of the message (the stuck-refund sweep's) finds the request's id in their headers.
 */
export function firstRequestMessageIds(key: string): string[] {
  return [`${key}#${ACCEPTED}`, `${key}#${HANDED_OVER}`];
}

export type ProcessResult =
  { kind: 'done'; refund: Refund } | { kind: 'retry'; reason: string } | { kind: 'failed'; reason: string };

export interface ProcessOptions {
  /**
   * Awaited right before each Stripe call an attempt makes (the worker's rate limiter): on a retry, before its look at
   * Stripe's refunds and again before the refund itself. When it rejects (the worker stopping while
   * it waits), nothing was sent: the attempt just begun is taken back and the rejection passes on, so the message
   * can be given back to the queue as it came.
   */
  beforeStripeCall?: () => Promise<void>;
  /** The id of the HTTP request that asked for the refund, from its message: put as `reqId` on the lines. */
  reqId?: string | undefined;
}

const OWNER_SEPARATOR = '/';
/** Request ids of refunds made outside the service (the Stripe dashboard): `stripe:<refund id>`. */
const EXTERNAL_REQUEST_PREFIX = 'stripe:';

/**
 * The ledger-only metadata key of a refund asked for what is left whose amount was lowered after Stripe refused it
 * for want of money left (lowerToWhatIsLeft): the amount fixed at its acceptance. Never sent to Stripe. While a
 * row carries it, its Stripe idempotency keys name its amount (stripeKeySeed), so the lowered refund is asked for
 * under keys of its own, never under the refused request's.
 */
export const LOWERED_FROM_METADATA_KEY = 'payment_service_lowered_from';

/** The metadata a refund row keeps for its client: without the ledger's own LOWERED_FROM_METADATA_KEY. */
function clientMetadata(refund: Pick<Refund, 'metadata'>): Record<string, string> {
  const { [LOWERED_FROM_METADATA_KEY]: _lowered, ...metadata } = refund.metadata;
  return metadata;
}

/**
 * What refund `refund`'s Stripe idempotency keys are built from: its ledger key, and once its amount was lowered,
 * that amount too (`<key>@<amount>`). A key Stripe saw with one amount is never sent with another (Stripe answers
 * such a reuse with an idempotency error), and every attempt at the lowered amount shares its keys.
 */
export function stripeKeySeed(refund: Pick<Refund, 'requestId' | 'amount' | 'metadata'>): string {
  return Object.hasOwn(refund.metadata, LOWERED_FROM_METADATA_KEY)
    ? `${refund.requestId}@${refund.amount}`
    : refund.requestId;
}

/** Request ids are chosen by clients, so they are namespaced by owner: two shops may both use "order-1". */
export function requestKey(owner: string, requestId: string): string {
  return owner ? `${owner}${OWNER_SEPARATOR}${requestId}` : requestId;
}

export function publicRequestId(refund: Pick<Refund, 'owner' | 'requestId'>): string {
  const prefix = refund.owner ? `${refund.owner}${OWNER_SEPARATOR}` : '';
  return prefix && refund.requestId.startsWith(prefix)
    ? refund.requestId.slice(prefix.length)
    : refund.requestId;
}

/**
 * Stripe made the refund, but the ledger could not record its answer (the database went away meanwhile). The 503
 * store_unavailable asks for the same request again, which finds this refund by its request_id; a request that sent
 * neither request_id nor Idempotency-Key got a fresh request_id, so that retry (retrying HTTP clients follow
 * Retry-After by themselves) refunds a second time. That answer names the request_id to check instead, and has no
 * Retry-After.
 */
function unrecordedRefundProblem(err: unknown, refund: Refund, requestIdGenerated: boolean): unknown {
  if (!requestIdGenerated || !(err instanceof StoreUnavailableError)) return err;
  return new ProblemError(
    503,
    'Stripe made the refund, but the service could not reach its database to record it. The request had no ' +
      'request_id or Idempotency-Key, so a retry would refund a second time: check ' +
      `/refund-status/${publicRequestId(refund)} instead once the service answers again.`,
    { code: err.code, cause: err },
  );
}

/**
 * What becomes of a refund request whose write the database did not confirm, if it was recorded. `windowMs`: how
 * long after its accept a synchronous refund may still have an attempt at work (attemptWindowMs), until when the
 * request sent again answers 409 refund_in_progress rather than make it.
 */
function ifRecorded(mode: 'sync' | 'async', sentAgain: string, windowMs: number): string {
  return mode === 'async'
    ? 'If it did, the refund is queued and will be made in the background.'
    : `If it did, the refund will be made: by this request sent again ${sentAgain} (it answers 409 ` +
        `refund_in_progress until ${Math.ceil(windowMs / 1000)} s after this request, then makes it), or else by the ` +
        'service in the background within about ten minutes.';
}

/**
 * The answer of a POST /refund sent with neither request_id nor Idempotency-Key whose refund was handed to the worker
 * (Stripe did not answer, or a call under its key was still running there): the refund will be made, under the
 * request_id the service generated. `handedOver` (503 upstream_unavailable, 409 refund_in_progress) carries
 * Retry-After, which retrying HTTP clients follow by themselves with the same body: a new request_id, and a second
 * refund. This one has no Retry-After, and says to check that request_id or send the request again with it.
 */
function unkeyedHandOver(handedOver: ProblemError, refund: Refund): ProblemError {
  const { retry_after: _retryAfter, headers: _headers, ...extras } = handedOver.extras;
  const id = publicRequestId(refund);
  return new ProblemError(
    handedOver.status,
    `${handedOver.detail ?? ''} The request had no request_id or Idempotency-Key, so sending it again as it was ` +
      `would refund a second time: check /refund-status/${id}, or send it again with request_id ${id}, which ` +
      'refunds at most once.',
    extras,
  );
}

/**
 * A refund request sent with neither request_id nor Idempotency-Key, whose write the database did not confirm (the
 * connection dropped during the commit, or the statement went unanswered): the refund may be recorded, and then
 * queued or left for the worker, under the request_id the service generated, and is then made whatever the client
 * does next. The plain 503 store_unavailable asks for the same request again (with Retry-After, which retrying HTTP
 * clients follow by themselves), which would get a fresh request_id and could refund a second time. This answer has
 * no Retry-After, says that a recorded refund will be made, and names the request_id to check, or to send the
 * request again with, which then refunds at most once.
 */
function unconfirmedAcceptProblem(
  err: unknown,
  requestId: string,
  mode: 'sync' | 'async',
  windowMs: number,
): unknown {
  if (!(err instanceof StoreUnavailableError)) return err;
  return new ProblemError(
    503,
    'The service could not reach its database to confirm that it recorded this refund request, so it may have. ' +
      `${ifRecorded(mode, `with request_id ${requestId}`, windowMs)} The request had no request_id or ` +
      'Idempotency-Key, so sending it again as it was could refund a second time: once the service answers ' +
      `again, check /refund-status/${requestId} (a 404 ` +
      `there means it was not recorded, and nothing will be made), or send it again with request_id ${requestId}, ` +
      'which refunds at most once.',
    { code: err.code, cause: err },
  );
}

/**
 * A refund request sent with a request_id (or an Idempotency-Key, which names one), whose write the database did
 * not confirm: as the plain 503 store_unavailable, retryable with the same request, but saying that a recorded
 * refund is made even if the client gives up, so that it does not refund another way.
 */
function unconfirmedKeyedAcceptProblem(err: unknown, mode: 'sync' | 'async', windowMs: number): unknown {
  if (!(err instanceof StoreUnavailableError)) return err;
  return new ProblemError(
    503,
    'The service could not reach its database to confirm that it recorded this refund request, so it may have. ' +
      `${ifRecorded(mode, 'as it was', windowMs)} Retry later with the same request; it refunds at most once.`,
    { code: err.code, retry_after: 1, headers: { 'Retry-After': '1' }, cause: err },
  );
}

/**
 * The request id of a refund asked for with an Idempotency-Key but no request_id: derived from the key, so
 * that a retry the Idempotency-Key store no longer answers (the first try got a 5xx, the process died before
 * storing the answer, or a day has passed) finds the same refund instead of making another.
 */
export function requestIdFromIdempotencyKey(idempotencyKey: string): string {
  return `idem:${hash('sha256', idempotencyKey, 'hex').slice(0, 40)}`;
}

/**
 * Stripe's idempotency key for refund `key`. Generation 0 is `refund:<key>`; a later generation is used only
 * once Stripe has replayed a 5xx saved under the one before and the refund is not at Stripe (see callStripe).
 */
export function stripeIdempotencyKey(key: string, generation = 0): string {
  return generation === 0 ? `refund:${key}` : `refund:${key}#${generation}`;
}

/**
 * The order of metadata keys in a request's hash, the same in every process: localeCompare without a locale
 * follows the process's LANG (under da_DK `aa` sorts after `b`), so one body hashed differently in two processes,
 * or before and after a deploy, and its retry was refused as another body. en-US is the order every process without
 * LANG (the Docker image) or under C or en_US has hashed with, so the hashes already stored still match (code-unit
 * order would not).
 */
const METADATA_KEY_ORDER = new Intl.Collator('en-US');

function hashRequest(
  input: RefundInput,
  order: (a: string, b: string) => number = METADATA_KEY_ORDER.compare,
): string {
  const canonical = JSON.stringify({
    payment_intent_id: input.payment_intent_id,
    amount: input.amount ?? null,
    reason: input.reason ?? null,
    metadata: Object.fromEntries(Object.entries(input.metadata ?? {}).sort(([a], [b]) => order(a, b))),
  });
  return hash('sha256', canonical, 'hex');
}

/**
 * The request hash a refund request's ledger row holds for this body (what an accept writes), for tests that write
 * the row an accept whose answer was lost would have left.
 */
export function refundRequestHash(input: RefundInput): string {
  return hashRequest(input);
}

/**
 * Whether `stored` is the hash of this body (`current`, hashRequest's of `input`, the body as taken): also as
 * versions before the en-US order hashed it, in this process's locale, which differs only under a LANG that sorts
 * ASCII otherwise (da_DK), so that a request made there before the upgrade is still its own when retried there.
 * And, for a body the service takes otherwise than `sent` (a metadata key of empty value: refundAsTaken), as
 * versions before hashed it, as sent: the row one of them wrote for it (keeping `k: ""`) is still the request of
 * that exact body (as before, the body spelt otherwise, without `k`, is not).
 */
function isHashOf(
  stored: string | null,
  input: RefundInput,
  current: string,
  sent: RefundInput = input,
): boolean {
  if (stored === null) return false;
  const inLocale = (a: string, b: string) => a.localeCompare(b);
  if (stored === current || stored === hashRequest(input, inLocale)) return true;
  return sent !== input && (stored === hashRequest(sent) || stored === hashRequest(sent, inLocale));
}

export function toRefundStatus(stripeStatus: string | null | undefined): RefundStatus {
  return stripeStatus && isRefundStatus(stripeStatus) ? stripeStatus : 'pending';
}

export function outcomeOf(refund: Refund): RefundOutcomeMessage {
  return {
    success:
      refund.status === 'succeeded' || refund.status === 'pending' || refund.status === 'requires_action',
    // Request ids are unique per owner only: without it, two shops' `order-1` could not be told apart.
    owner: refund.owner || null,
    request_id: publicRequestId(refund),
    refund_id: refund.stripeRefundId,
    status: refund.status,
    amount: refund.amount,
    currency: refund.currency,
    payment_intent_id: refund.paymentIntentId,
    failure_reason: refund.failureReason,
  };
}

/**
 * The outcome message to publish for an outbox row. Versions before outcomes named their owner (b3aceb6) wrote
 * rows without `owner`, which the contract requires: such a row, still in the outbox when this version's relay
 * takes it (written by a process of the earlier version during a rolling update, or waiting out a broker outage),
 * gets the owner of its refund, found by the ledger key its message id starts with
 * (`<key>#<status>#<time>`). Any other row is published as it is.
 */
export async function outcomeBodyOf(
  store: Pick<Store, 'refunds'>,
  row: Pick<OutboxMessage, 'messageId' | 'payload'>,
): Promise<unknown> {
  const { payload } = row;
  if (typeof payload !== 'object' || payload === null || 'owner' in payload) return payload;
  const requestId = (payload as { request_id?: unknown }).request_id;
  if (typeof requestId !== 'string') return payload;
  const key = row.messageId.split('#').slice(0, -2).join('#');
  const refund = key ? await store.refunds.get(key) : null;
  const suffix = `${OWNER_SEPARATOR}${requestId}`;
  const owner = refund
    ? refund.owner || null
    : key.endsWith(suffix) && key.length > suffix.length
      ? key.slice(0, -suffix.length)
      : null;
  return { ...payload, owner };
}

/** The payment intent a Stripe refund is of (an id, or an expanded object), null for a bare charge's. */
export function paymentIntentOf(r: Stripe.Refund): string | null {
  return typeof r.payment_intent === 'string' ? r.payment_intent : (r.payment_intent?.id ?? null);
}

/**
 * Whether Stripe refund `r` can be the one the service made for ledger row `row`: tagged with its key, of its
 * payment intent and of its amount. Every refund the service makes carries all three; a refund made elsewhere
 * (the dashboard, a shop's own tooling) may carry a `request_id` of its own that happens to be the key.
 */
function madeFor(row: Pick<Refund, 'requestId' | 'paymentIntentId' | 'amount'>, r: Stripe.Refund): boolean {
  return (
    r.metadata?.request_id === row.requestId &&
    paymentIntentOf(r) === row.paymentIntentId &&
    r.amount === row.amount
  );
}

/**
 * The ledger row of Stripe refund `r`: the row tied to it, else the row its metadata names (the webhook can
 * beat our own write) when Stripe's refund can be that row's (madeFor) and the row is not tied to another
 * Stripe refund. Null when the ledger has none (a refund made outside the service). Webhooks and
 * reconciliation both use this rule, so what one records the other finds.
 */
export async function ledgerRowOf(repos: Pick<Repos, 'refunds'>, r: Stripe.Refund): Promise<Refund | null> {
  const tied = await repos.refunds.getByStripeId(r.id);
  const tagged = r.metadata?.request_id;
  if (tied || !tagged) return tied;
  const candidate = await repos.refunds.get(tagged);
  return candidate &&
    madeFor(candidate, r) &&
    (candidate.stripeRefundId === null || candidate.stripeRefundId === r.id)
    ? candidate
    : null;
}

export type RefundService = ReturnType<typeof createRefundService>;

export function createRefundService(deps: RefundServiceDeps) {
  const { store, stripe, payments, topology } = deps;
  const log = deps.logger.child({ component: 'refunds' });
  // Without a value from the Stripe client's settings: the client's defaults (20 s, 2 retries).
  const attemptWindow = deps.attemptWindowMs ?? attemptWindowMs(20_000, 2);

  /**
   * The ids every line about a refund carries, its Stripe calls' lines included: the refund's request_id and
   * payment intent, and the id of the HTTP request at work on it or, in the worker, of the one that queued it
   * (its message carries it), if any.
   */
  function idsOf(refund: Pick<Refund, 'requestId' | 'paymentIntentId'>, reqId?: string) {
    return { reqId, request_id: refund.requestId, payment_intent: refund.paymentIntentId };
  }

  function sameRequestOrConflict(
    existing: Refund,
    input: RefundInput,
    sent: RefundInput,
    hash: string,
    caller: Caller,
    derived: boolean,
  ): Refund {
    if (existing.owner !== caller.owner) {
      // Cannot happen with owner-namespaced keys; never reveal another owner's refund if it somehow did.
      throw new ProblemError(409, 'This request_id is already in use.', { code: 'request_id_conflict' });
    }
    const same = isHashOf(existing.requestHash, input, hash, sent);
    if (!same && derived) {
      // The client named no request_id, only the key: the refusal is the one the key store gives within the key's
      // day (422), not a conflict over a request_id the client never sent.
      throw new ProblemError(
        422,
        `This Idempotency-Key was used with a different request (refund request ${publicRequestId(existing)}).`,
        { code: 'idempotency_key_reused' },
      );
    }
    if (!same) {
      throw new ProblemError(
        409,
        `request_id ${publicRequestId(existing)} was already used with a different body.`,
        {
          code: 'request_id_conflict',
        },
      );
    }
    return existing;
  }

  function requestMessage(key: string, attemptHint: string, reqId: string | undefined): NewOutboxMessage {
    return refundRequestMessage(topology.requests, key, attemptHint, reqId);
  }

  async function enqueue(
    tx: Repos,
    key: string,
    attemptHint: string,
    reqId: string | undefined,
  ): Promise<void> {
    await tx.outbox.add(requestMessage(key, attemptHint, reqId));
  }

  /**
   * The outcome message other services read from the responses queue. `reqId`: the HTTP request that asked for
   * the refund, when the writer knows it (the request itself, or the worker from its message), in the same
   * REQUEST_ID_HEADER header as the request message, so a consumer's lines can name it too.
   */
  function announcement(refund: Refund, reqId?: string): NewOutboxMessage {
    return {
      destination: topology.responses,
      routingKey: topology.responses,
      // updatedAt keeps the id unique when a refund passes through the same status twice (pending ↔ requires_action).
      messageId: `${refund.requestId}#${refund.status}#${refund.updatedAt}`,
      payload: outcomeOf(refund),
      ...(reqId !== undefined && { headers: { [REQUEST_ID_HEADER]: reqId } }),
    };
  }

  async function announce(tx: Repos, refund: Refund, reqId?: string): Promise<void> {
    await tx.outbox.add(announcement(refund, reqId));
  }

  /**
   * Validates and reserves the amount in the ledger (and, when queued, writes the outbox row) in one transaction.
   * The body `sent` is compared and kept as the service takes it (refundAsTaken: a metadata key of empty value is
   * not set, as at Stripe), as an Idempotency-Key compares it; its reserved metadata keys are refused as sent.
   */
  async function accept(
    caller: Caller,
    sent: RefundInput,
    mode: 'sync' | 'async',
    idempotencyKey: string | undefined,
    reqId?: string,
    onRequestId?: (requestId: string) => void,
  ): Promise<{ refund: Refund; created: boolean }> {
    requireMetadataFits(sent.metadata);
    if (sent.metadata !== undefined && Object.hasOwn(sent.metadata, LOWERED_FROM_METADATA_KEY)) {
      // The ledger's own mark of a refund lowered to what is left (never sent to Stripe): a client's would be
      // dropped from what Stripe is sent, and taken for the mark. Refused as sent, even with an empty value.
      throw new ProblemError(
        400,
        `The metadata key ${LOWERED_FROM_METADATA_KEY} is the service's own: it marks a refund lowered to what is ` +
          'left at Stripe; choose another.',
        {
          code: 'metadata_key_reserved',
          param: 'metadata',
          errors: [
            {
              path: `/body/metadata/${LOWERED_FROM_METADATA_KEY}`,
              message: "is reserved for the service's own use",
            },
          ],
        },
      );
    }
    const input = refundAsTaken(sent);
    if (input.request_id?.startsWith(EXTERNAL_REQUEST_PREFIX)) {
      // The ids of refunds made outside the service: a client's own would take the place of the dashboard refund's
      // (its webhook could then never be applied) and GET /refund-status would answer for the wrong one.
      throw new ProblemError(
        400,
        `Request ids starting with "${EXTERNAL_REQUEST_PREFIX}" name refunds made in the Stripe dashboard; choose another.`,
        { code: 'request_id_reserved', param: 'request_id' },
      );
    }
    const derived = input.request_id === undefined && idempotencyKey !== undefined;
    const requestId =
      input.request_id ?? (derived ? requestIdFromIdempotencyKey(idempotencyKey) : randomUUID());
    if (input.request_id === undefined && !derived) onRequestId?.(requestId);
    try {
      return await acceptUnder(caller, input, sent, mode, requestId, derived, reqId);
    } catch (err) {
      if (input.request_id !== undefined || derived)
        throw unconfirmedKeyedAcceptProblem(err, mode, attemptWindow);
      throw unconfirmedAcceptProblem(err, requestId, mode, attemptWindow);
    }
  }

  /**
   * accept, once the request's id is known (given, derived from its Idempotency-Key, or generated): `input` is the
   * body as taken, `sent` as sent.
   */
  async function acceptUnder(
    caller: Caller,
    input: RefundInput,
    sent: RefundInput,
    mode: 'sync' | 'async',
    requestId: string,
    derived: boolean,
    reqId?: string,
  ): Promise<{ refund: Refund; created: boolean }> {
    const key = requestKey(caller.owner, requestId);
    const hash = hashRequest(input);
    const piId = input.payment_intent_id;
    // The row either path writes, but for the amount and the currency (which come from the payment).
    const fields = {
      requestId: key,
      owner: caller.owner,
      paymentIntentId: piId,
      reason: input.reason ?? null,
      status: mode === 'async' ? 'queued' : 'processing',
      // The synchronous path calls Stripe right after this commit: count that attempt now.
      attempts: mode === 'sync' ? 1 : 0,
      mode,
      requestHash: hash,
      metadata: input.metadata ?? {},
      // Kept for the x-request-id header of the outcomes a webhook settles (applyStripeRefund).
      httpRequestId: reqId ?? null,
    } satisfies Omit<NewRefund, 'amount' | 'currency'>;
    const notRefundable = (status: string) =>
      new ProblemError(
        409,
        `Payment intent ${piId} has not succeeded (status ${status}); nothing to refund.`,
        {
          code: 'payment_not_refundable',
        },
      );

    // PostgreSQL: the common case (the caller's own succeeded payment, a new request id, an amount that fits)
    // is one statement instead of a four-round-trip transaction. It writes only what the transaction below
    // would, under the same lock; anything else leaves no trace and takes the transaction, which explains.
    if (mode === 'async' && store.refunds.acceptAnnounced) {
      const lease = deps.outbox?.leaseForHandOff() ?? null;
      const message = requestMessage(key, ACCEPTED, reqId);
      const held = lease === null ? null : leased(message, lease);
      const fast = await store.refunds
        .acceptAnnounced({ ...fields, amount: input.amount ?? null }, held?.message ?? message)
        .catch((err: unknown) => {
          // A concurrent request with this id got there first: the transaction below finds it (a replay).
          if (err instanceof DuplicateKeyError) return null;
          throw err;
        });
      if (fast) {
        published(held?.handOff(fast.outboxId));
        return { refund: fast.refund, created: true };
      }
    }

    // Everything the check needs is read in the one transaction that reserves the amount, so a request
    // waits for a single commit. Only when the ledger does not know the payment as succeeded is Stripe
    // asked (outside any transaction) and the check run once more.
    for (let round = 0; round < 2; round++) {
      let outcome: { refund: Refund; created: boolean; handOff?: OutboxMessage } | 'refresh';
      // Asked before the transaction: the row is written already leased to this process's relay.
      const lease = mode === 'async' ? (deps.outbox?.leaseForHandOff() ?? null) : null;
      try {
        outcome = await store.transaction(async (tx) => {
          const { existing, payment: locked, committed } = await tx.refunds.lockForAccept(key, piId);
          if (existing)
            return {
              refund: sameRequestOrConflict(existing, input, sent, hash, caller, derived),
              created: false,
            };
          // Usually the intent's own row says whose it is; otherwise it may be visible through its session.
          const visible = locked?.owner === caller.owner ? locked : await payments.ownedRow(caller, piId, tx);
          if (!visible && !isOpenMode(caller)) {
            // The ledger may not know yet that the intent is the caller's (a checkout payment whose events have not
            // come): resolveForRefund asks Stripe, outside the transaction.
            if (round > 0)
              throw new ProblemError(404, 'No such payment intent.', { code: 'resource_missing' });
            return 'refresh';
          }
          if (locked?.status !== 'succeeded') {
            if (round > 0) throw notRefundable(locked?.status ?? 'unknown');
            return 'refresh';
          }
          const remaining = locked.amount - committed;
          if (remaining <= 0) {
            throw new ProblemError(
              409,
              `Payment intent ${piId} is already fully refunded (or being refunded).`,
              {
                code: 'charge_already_refunded',
              },
            );
          }
          const amount = input.amount ?? remaining;
          // More digits than Stripe takes in the currency (eight; twelve in idr): refused as for a payment (400, nothing
          // reserved), rather than as more than is left (409), which is true but not why Stripe would refuse it.
          requireAmountWithinMax(amount, locked.currency, 'amount');
          // What is left stays a multiple of 10 when every refund was one.
          requireAmountFitsCurrency(amount, locked.currency, 'amount');
          if (amount > remaining) {
            throw new ProblemError(
              409,
              `Refund amount ${amount} exceeds the ${remaining} left to refund on ${piId}.`,
              {
                code: 'amount_exceeds_refundable',
                param: 'amount',
              },
            );
          }
          const row = { ...fields, amount, currency: locked.currency } satisfies NewRefund;
          if (mode === 'sync') return { refund: await tx.refunds.insert(row), created: true };
          // Queued: the refund and the message that queues it are written together.
          const message = requestMessage(key, ACCEPTED, reqId);
          const held = lease === null ? null : leased(message, lease);
          const { refund, outboxId } = await tx.refunds.insertAnnounced(row, held?.message ?? message);
          return { refund, created: true, handOff: held?.handOff(outboxId) };
        });
      } catch (err) {
        if (err instanceof DuplicateKeyError) {
          const raced = await store.refunds.get(key);
          if (raced) {
            return {
              refund: sameRequestOrConflict(raced, input, sent, hash, caller, derived),
              created: false,
            };
          }
        }
        throw err;
      }
      if (outcome !== 'refresh') {
        if (outcome.created && mode === 'async') published(outcome.handOff);
        return { refund: outcome.refund, created: outcome.created };
      }
      const payment = await payments.resolveForRefund(caller, piId, reqId);
      if (payment.status !== 'succeeded') throw notRefundable(payment.status);
    }
    throw notRefundable('unknown');
  }

  /**
   * Asks Stripe for the refund under its idempotency key. Stripe saves a 5xx once the endpoint has begun and
   * replays it to every retry with that key (docs.stripe.com/api/idempotent_requests), so such a key can never
   * succeed. Then the refund is looked for at Stripe (the failed request may still have made it) and, when it
   * is not there, asked for again under the next generation of the key. Every worker walks the same keys in
   * the same order, so two deliveries of one refund still share a key at every step. Attempt n may reach
   * generation n - 1 at most: one new key per attempt, at the worker's retry pace, so an outage that lasts a
   * while cannot use every key up within one attempt.
   *
   * A saved 5xx is told from its first answer on, not only from its replays (isSavedServerError): Stripe marks it
   * Stripe-Should-Retry: false, so the SDK no longer retries it into a replay. A key below the last generation
   * can get its first saved 5xx in this attempt (an earlier attempt's call under it failed in front of Stripe's
   * idempotency layer, or got no answer): it is moved on from as a replayed one is, rather than the attempt spent
   * on a key that cannot succeed. At the last generation either one ends the attempt, as before.
   */
  async function callStripe(refund: Refund, reqId?: string): Promise<Stripe.Refund> {
    const lastGeneration = Math.max(0, refund.attempts - 1);
    for (let generation = 0; ; generation++) {
      try {
        return await withoutCallSite(() =>
          stripe.refunds.create(
            {
              payment_intent: refund.paymentIntentId,
              amount: refund.amount,
              ...(refund.reason ? { reason: refund.reason as Stripe.RefundCreateParams.Reason } : {}),
              metadata: { ...clientMetadata(refund), request_id: refund.requestId },
            },
            {
              idempotencyKey: stripeIdempotencyKey(stripeKeySeed(refund), generation),
              ...logContextOptions(idsOf(refund, reqId)),
            },
          ),
        );
      } catch (err) {
        if (generation >= lastGeneration || !isSavedServerError(err)) throw err;
        const made = await findStripeRefund(refund, reqId);
        if (made) return made;
        log.warn(
          { ...idsOf(refund, reqId), generation: generation + 1 },
          "Stripe saved an error under this refund's key; asking again under a new idempotency key",
        );
      }
    }
  }

  /**
   * After the commit of an outbox row: hand it to this process's relay when it was written leased to it,
   * else wake the relay so that it claims the row now rather than at its next poll.
   */
  function published(handOff: OutboxMessage | undefined): void {
    if (handOff) deps.outbox?.handOff(handOff);
    else deps.outbox?.notify();
  }

  /** Passes on a committed move into a final status (see RefundServiceDeps.onFinal). */
  function settled(refund: Refund, moved: boolean): Refund {
    if (moved && isTerminalRefundStatus(refund.status)) deps.onFinal?.(refund);
    return refund;
  }

  /**
   * Stores Stripe's answer and, in the same transaction, the outcome message for other services. The row
   * may have been given up on (failed without a Stripe id) while the call was in flight, by another delivery
   * or a sweep's: even the caller that began the call cannot rule that out, so Stripe's answer may correct it.
   */
  async function recordStripeRefund(
    key: string,
    r: Stripe.Refund,
    reqId?: string,
    /**
     * A refund made outside the service, new to the ledger: inserted in the same transaction, so that no reader
     * sees it before it stands at Stripe's status (a failed one holding its amount, say). DuplicateKeyError when
     * another writer recorded it first.
     */
    external?: NewRefund,
  ): Promise<Refund> {
    const { refund, moved } = await store.transaction(async (tx) => {
      if (external) await tx.refunds.insert(external);
      // The row first, locked: a process giving up on the refund at this moment (its UPDATE to failed done, its
      // commit not yet) would otherwise be seen by the next statement as it was before (PostgreSQL, READ COMMITTED),
      // with nothing to put right, and the one after would tie Stripe's refund to the row it left failed: `failed`
      // with a Stripe id, which nothing puts right, its amount released while Stripe made the refund.
      await tx.refunds.lockForUpdate(key);
      const to = { status: toRefundStatus(r.status), failureReason: r.failure_reason ?? null };
      // Stripe is the truth about money: a refund we gave up on but Stripe made is put right.
      const corrected = await tx.refunds.correctFromStripe(key, {
        ...to,
        stripeRefundId: r.id,
        currency: r.currency,
      });
      if (!corrected) await tx.refunds.patch(key, { stripeRefundId: r.id, currency: r.currency });
      // Failed or canceled at Stripe too: the row takes Stripe's id, status and reason, but its failure was
      // announced and counted, and either way no money moved. Announced again, a consumer saw one refund end twice
      // (failed, then canceled); a refund Stripe made after all (succeeded, pending...) is news, and announced.
      const moved = corrected
        ? !RELEASED_REFUND_STATUSES.includes(to.status)
        : await tx.refunds.advance(key, to);
      const refund = (await tx.refunds.get(key))!;
      if (moved) await announce(tx, refund, reqId);
      return { refund, moved };
    });
    return settled(refund, moved);
  }

  /**
   * The worker's common case: the row moves and its outcome message is written together (one statement on
   * PostgreSQL); anything unusual (a webhook got there first) takes the general path.
   */
  async function recordAttempt(current: Refund, r: Stripe.Refund, reqId?: string): Promise<Refund> {
    const key = current.requestId;
    const to = {
      status: toRefundStatus(r.status),
      stripeRefundId: r.id,
      currency: r.currency,
      failureReason: r.failure_reason ?? null,
    };
    // The outcome message is written leased to this process's relay when it can take one (as in accept).
    const lease = deps.outbox?.leaseForHandOff() ?? null;
    let handOff: ((id: number) => OutboxMessage) | undefined;
    const row = await store.refunds.settleAttemptAnnounced(current, to, (settledRow) => {
      const message = announcement(settledRow, reqId);
      if (lease === null) return message;
      const held = leased(message, lease);
      handOff = held.handOff;
      return held.message;
    });
    // Someone got there first: a webhook, or another delivery of this refund that gave up on it while this
    // call was in flight (then Stripe's answer puts the failed row right).
    if (!row) return recordStripeRefund(key, r, reqId);
    published(handOff?.(row.outboxId));
    return settled(row.refund, true);
  }

  /** The refund Stripe made for this request, if any (see madeFor). */
  async function findStripeRefund(refund: Refund, reqId?: string): Promise<Stripe.Refund | null> {
    for await (const r of stripe.refunds.list(
      { payment_intent: refund.paymentIntentId, limit: 100 },
      logContextOptions(idsOf(refund, reqId)),
    )) {
      if (madeFor(refund, r)) return r;
    }
    return null;
  }

  async function recordFailure(key: string, reason: string, reqId?: string): Promise<Refund | null> {
    const { refund, moved } = await store.transaction(async (tx) => {
      // Never a refund tied to a Stripe refund: Stripe made it, and its webhooks say how it ends.
      const moved = await tx.refunds.giveUp(key, reason);
      const refund = await tx.refunds.get(key);
      if (moved && refund) await announce(tx, refund, reqId);
      return { refund, moved };
    });
    return refund ? settled(refund, moved) : null;
  }

  /**
   * A refund whose fate is unknown (a call may have reached Stripe, and Stripe cannot be asked now) stays
   * `processing`, its amount reserved; its message is dead-lettered, and the stuck-refund sweep queues it again
   * once it has been untouched for a while. That attempt looks at Stripe first, so it is recorded as made, or
   * made, never twice.
   */
  function leftUnresolved(refund: Refund, reason: string, reqId: string | undefined): ProcessResult {
    log.warn(
      { ...idsOf(refund, reqId), reason },
      'refund outcome unknown and Stripe cannot be asked; left processing for the stuck-refund sweep',
    );
    return { kind: 'failed', reason: `outcome_unknown:${reason}` };
  }

  /**
   * The worker's last resort, for a refund whose messages kept failing for a reason that is not Stripe's
   * answer (a bug, a row the ledger cannot write). The failure may have come after Stripe made the refund, so
   * Stripe is asked first: a refund it made is recorded as made, and while Stripe cannot be asked the refund
   * is left `processing` for the stuck-refund sweep. Only a refund Stripe does not have is marked failed.
   */
  async function giveUpUnlessMade(key: string, reason: string, reqId?: string): Promise<Refund | null> {
    const refund = await store.refunds.get(key);
    if (!refund || refund.stripeRefundId || isTerminalRefundStatus(refund.status)) return refund;
    let made: Stripe.Refund | null;
    try {
      made = await findStripeRefund(refund, reqId);
    } catch (err) {
      log.warn(
        { err, ...idsOf(refund, reqId) },
        'Stripe cannot be asked about a refund given up on; left for the sweep',
      );
      return refund;
    }
    // Each outcome written here is logged once, as process() logs its own.
    if (made) {
      const saved = await recordStripeRefund(key, made, reqId);
      log.info(
        { ...idsOf(refund, reqId), refund_id: made.id, status: saved.status },
        'refund found at Stripe',
      );
      return saved;
    }
    const given = await recordFailure(key, reason, reqId);
    if (given?.status === 'failed' && !given.stripeRefundId)
      log.warn({ ...idsOf(refund, reqId), reason }, 'refund failed');
    return given;
  }

  function failureReasonOf(err: unknown): string {
    const e = err as { code?: string; decline_code?: string; type?: string };
    return overRefundCode(err) ?? e.decline_code ?? e.code ?? classifyStripeError(err);
  }

  /**
   * After Stripe refused a refund for want of money left (overRefundCode): records now the refunds Stripe has on
   * the payment intent that the ledger lacks (made in the dashboard, their webhooks not applied yet), so that
   * what is left to refund and `amount_refunded` are right from here on instead of from whenever the webhooks
   * come (never, if they are lost). As the webhooks would: applying them again changes nothing. Best effort.
   */
  async function learnRefundsAtStripe(refund: Refund, reqId?: string): Promise<void> {
    try {
      for await (const r of stripe.refunds.list(
        { payment_intent: refund.paymentIntentId, limit: 100 },
        logContextOptions(idsOf(refund, reqId)),
      ))
        await applyStripeRefund(r);
    } catch (err) {
      log.warn(
        { err, ...idsOf(refund, reqId) },
        'could not read the refunds Stripe has; webhooks bring them',
      );
    }
  }

  /**
   * Whether refund `refund` was asked for without an amount ("what is left"): its request hash is that of its body
   * without one. A row the ledger made (a dashboard refund's) has no hash, and is not.
   */
  function askedForWhatIsLeft(refund: Refund): boolean {
    if (refund.mode === 'external' || refund.requestHash === null) return false;
    const input: RefundInput = {
      payment_intent_id: refund.paymentIntentId,
      ...(refund.reason !== null && { reason: refund.reason as NonNullable<RefundInput['reason']> }),
      metadata: clientMetadata(refund),
    };
    return isHashOf(refund.requestHash, input, hashRequest(input));
  }

  /**
   * A refund asked for what is left that Stripe refused for want of money left (a refund made in the dashboard
   * meanwhile, its webhook not applied yet, when the amount was fixed at acceptance): what is left now is asked
   * for instead. The refunds Stripe has are learnt first (learnRefundsAtStripe: one of them may even be this
   * refund's, made by an earlier call, which ties the row to it and ends this); then the charge's refundable amount
   * is read from Stripe, and the row's amount lowered to it (never raised, and never past what the ledger leaves
   * beside the row's other refunds) in one conditional write that also marks the row (LOWERED_FROM_METADATA_KEY),
   * so that its Stripe calls from then on go under new idempotency keys that name the amount (stripeKeySeed): the
   * refused key is never sent with another amount, and every later attempt, delivery or sweep asks under the same
   * key, so the money moves once. Answers the row to ask Stripe for, or null when there is nothing to lower it to
   * (then the refusal stands).
   */
  async function lowerToWhatIsLeft(refund: Refund, reqId?: string): Promise<Refund | null> {
    if (!askedForWhatIsLeft(refund)) return null;
    await learnRefundsAtStripe(refund, reqId);
    let refundable: number;
    try {
      const pi = await withoutCallSite(() =>
        stripe.paymentIntents.retrieve(
          refund.paymentIntentId,
          { expand: ['latest_charge'] },
          logContextOptions(idsOf(refund, reqId)),
        ),
      );
      const charge = pi.latest_charge;
      if (charge === null || typeof charge === 'string') return null;
      refundable = charge.amount_captured - charge.amount_refunded;
    } catch (err) {
      log.warn(
        { err, ...idsOf(refund, reqId) },
        'could not read what is left to refund at Stripe; the refusal stands',
      );
      return null;
    }
    const [current, payment, committed] = await Promise.all([
      store.refunds.get(refund.requestId),
      store.payments.get(refund.paymentIntentId),
      store.refunds.sumCommitted(refund.paymentIntentId),
    ]);
    if (!current || !payment || current.stripeRefundId || current.status !== 'processing') return null;
    if (current.amount !== refund.amount) {
      // Another delivery lowered it first: asked for under the same key as that one.
      return current.amount < refund.amount && stripeKeySeed(current) !== current.requestId ? current : null;
    }
    // Beside what the ledger's other refunds hold, and in the currency's step (a three-decimal currency's tens).
    const left = Math.min(refundable, payment.amount - (committed - current.amount));
    const amount = left - (left % minorUnitStep(current.currency ?? payment.currency));
    if (amount <= 0 || amount >= current.amount) return null;
    const metadata = {
      ...current.metadata,
      [LOWERED_FROM_METADATA_KEY]: current.metadata[LOWERED_FROM_METADATA_KEY] ?? String(current.amount),
    };
    if (!(await store.refunds.lowerAmount(current.requestId, current.amount, amount, metadata))) {
      const raced = await store.refunds.get(current.requestId);
      return raced &&
        raced.status === 'processing' &&
        !raced.stripeRefundId &&
        raced.amount < current.amount &&
        stripeKeySeed(raced) !== raced.requestId
        ? raced
        : null;
    }
    log.info(
      { ...idsOf(refund, reqId), from: current.amount, amount },
      'Stripe has less left to refund than was fixed at acceptance; asking for what is left now',
    );
    return store.refunds.get(current.requestId);
  }

  /**
   * Applies Stripe's view of a refund (webhook or reconciliation). Finds our row by Stripe id, else by the
   * request key we put in its metadata (the webhook can beat our own write), else records a refund made
   * outside the service, e.g. in the Stripe dashboard, so it counts against what is left to refund.
   */
  async function applyStripeRefund(r: Stripe.Refund): Promise<Refund | null> {
    const piId = paymentIntentOf(r);
    let row = await ledgerRowOf(store, r);
    if (!row) {
      if (!piId) {
        // The ledger only knows payment intents; a refund of a bare charge has nothing to count against.
        log.info({ refund_id: r.id }, 'ignored a refund without a payment intent');
        return null;
      }
      // The payment's events may not have come yet (a checkout payment's intent then has no row of its own).
      const owner = await payments.ownerOfIntent(piId);
      // In the owner's namespace, like the owner's own requests: the outcome message names the request id
      // `stripe:<refund id>`, and GET /refund-status/{request_id} with the owner's key finds it.
      const key = requestKey(owner, `${EXTERNAL_REQUEST_PREFIX}${r.id}`);
      try {
        // Inserted `processing` and moved to Stripe's status in the one transaction that records it: in two,
        // a refund Stripe reports failed held its amount in between, and a refund asked for meanwhile was
        // refused as exceeding what is left.
        const recorded = await recordStripeRefund(key, r, undefined, {
          requestId: key,
          owner,
          paymentIntentId: piId,
          amount: r.amount,
          currency: r.currency,
          reason: r.reason ?? null,
          status: 'processing',
          stripeRefundId: r.id,
          mode: 'external',
          metadata: (r.metadata as Record<string, string> | null) ?? {},
        });
        log.info({ refund_id: r.id, payment_intent: piId }, 'recorded a refund made outside the service');
        return recorded;
      } catch (err) {
        if (!(err instanceof DuplicateKeyError)) throw err;
        row = await store.refunds.getByStripeId(r.id);
        if (!row) throw err;
      }
    }
    return recordStripeRefund(row.requestId, r, row.httpRequestId ?? undefined);
  }

  /** POST /refund's answer for a request already recorded: its refund, or why there is none yet. */
  function replayAnswer(refund: Refund): Refund {
    if (refund.stripeRefundId) return refund;
    if (refund.status === 'failed') throw refundFailed(refund);
    throw refundInProgress(refund);
  }

  /** 409 refund_failed for a refund that ended failed (or canceled), with the reason. */
  function refundFailed(refund: Refund): ProblemError {
    const ended = refund.status === 'canceled' ? 'was canceled' : 'failed';
    return new ProblemError(
      409,
      `This refund request already ${ended} (${refund.failureReason ?? 'unknown'}).`,
      {
        code: 'refund_failed',
      },
    );
  }

  /** 409 refund_in_progress for `refund`, with Retry-After (and retry_after) as inProgressRetryAfter says. */
  function refundInProgress(refund: Refund): ProblemError {
    const retryAfter = inProgressRetryAfter(refund);
    return new ProblemError(
      409,
      'A refund with this request_id is still being processed; see /refund-status.',
      {
        code: 'refund_in_progress',
        retry_after: retryAfter,
        headers: { 'Retry-After': String(retryAfter) },
      },
    );
  }

  /**
   * How many seconds a retry of a refund in progress should wait. A synchronous refund `processing` without a Stripe
   * id is in the hands of an attempt that began at its updatedAt and can last the attempt window at most, after
   * which a retry takes it over (refundNow). When the first answer was lost, no attempt is at work at all, and a
   * client following a Retry-After of 1 asked about seventy times before its retry could make the refund. So the
   * wait grows with the attempt's age, about the seconds since it began (a client following it asks after 1, 2, 4,
   * 8... s), at least 1, and never past the moment the refund is idle, so that the retry that can take it over comes
   * then. 1 for anything else (a queued refund is the worker's, whose retries and queue set the pace), and when the
   * ledger's clock is ahead of this process's.
   */
  function inProgressRetryAfter(refund: Refund, now = Date.now()): number {
    if (refund.mode !== 'sync' || refund.status !== 'processing' || refund.stripeRefundId !== null) return 1;
    const began = Date.parse(refund.updatedAt);
    if (Number.isNaN(began)) return 1;
    const atWork = Math.ceil((now - began) / 1000);
    const untilIdle = Math.ceil((began + attemptWindow - now) / 1000);
    return Math.max(1, Math.min(atWork, untilIdle));
  }

  /**
   * Whether a synchronous refund is `processing` without a Stripe id and its last attempt began longer ago than
   * an attempt can last (attemptWindowMs): no call of it can still be at work, and a retry may take it over.
   * Queued refunds are the worker's, whose message is on its way.
   */
  function isIdle(refund: Refund): boolean {
    return (
      refund.mode === 'sync' &&
      refund.status === 'processing' &&
      refund.stripeRefundId === null &&
      Date.parse(refund.updatedAt) < Date.now() - attemptWindow
    );
  }

  /**
   * Queues a synchronous refund whose attempt did not learn Stripe's answer, for the worker to finish under the same
   * idempotency key. Each attempt's hand-over is a message of its own (message ids are unique).
   */
  async function handOver(refund: Refund, reqId: string | undefined): Promise<void> {
    const hint = refund.attempts > 1 ? `${HANDED_OVER}-${refund.attempts}` : HANDED_OVER;
    await store.transaction((tx) => enqueue(tx, refund.requestId, hint, reqId));
  }

  /**
   * handOver for makeNow. When the database does not take it (503 store_unavailable), the refund stays recorded
   * (`processing`, its amount reserved) and the stuck-refund sweep makes it; for a request sent with neither
   * request_id nor Idempotency-Key that answer has no Retry-After (see unkeyedHandOver) and names the request_id.
   */
  async function handOverOrExplain(
    refund: Refund,
    reqId: string | undefined,
    unkeyed: boolean,
  ): Promise<void> {
    try {
      await handOver(refund, reqId);
    } catch (err) {
      if (!unkeyed || !(err instanceof StoreUnavailableError)) throw err;
      const id = publicRequestId(refund);
      throw new ProblemError(
        503,
        'Stripe did not confirm the refund, and the service could not reach its database to hand it to the ' +
          'background worker: the refund is kept, its amount reserved, and will be made in the background within ' +
          'about ten minutes. The request had no request_id or Idempotency-Key, so sending it again as it was ' +
          `would refund a second time: check /refund-status/${id} once the service answers again, or send it ` +
          `again with request_id ${id}, which refunds at most once.`,
        { code: err.code, cause: err },
      );
    }
  }

  /**
   * The synchronous path's attempt at refund `refund`, begun (accepted now, or taken over): asks Stripe and
   * answers with its result; on an unknown outcome, or a request under its key still running at Stripe, hands the
   * refund to the worker.
   */
  async function makeNow(
    refund: Refund,
    input: RefundInput,
    idempotencyKey: string | undefined,
    reqId: string | undefined,
    /** Whether this attempt already lowered the refund to what is left at Stripe (lowerToWhatIsLeft). */
    lowered = false,
  ): Promise<Refund> {
    let stripeRefund: Stripe.Refund;
    let looking = false;
    // Without either, a retry of the same body is a new request (a new request_id) and a refund of its own.
    const unkeyed = input.request_id === undefined && idempotencyKey === undefined;
    try {
      // A takeover (attempts > 1): an earlier attempt may have reached Stripe more than a day ago, when Stripe no
      // longer knows its idempotency key, so the refund is looked for first, as the worker does.
      looking = refund.attempts > 1;
      const found = looking ? await findStripeRefund(refund, reqId) : null;
      looking = false;
      stripeRefund = found ?? (await callStripe(refund, reqId));
    } catch (err) {
      if (isIdempotencyKeyInUse(err)) {
        // A request under the refund's key is still running at Stripe. It may be another attempt's (a takeover, the
        // worker), whose answer settles the row; but it may as well be this attempt's own first try, which the SDK
        // gave up on at STRIPE_TIMEOUT_MS and retried while Stripe was still at it. Then nobody waits for Stripe's
        // answer, and without a webhook the refund stayed `processing` until the client's retry took it over (the
        // attempt window) or the stuck-refund sweep (ten minutes). So the refund is handed to the worker here too:
        // it asks Stripe again under the same key, which replays the refund made (or is still in use, and the worker
        // retries later), so nothing is made twice; when another attempt does hold it, that worker run finds the row
        // settled or replays the same answer. A hand-over the database does not take fails the request as below
        // (503 store_unavailable), and its retry finds the refund in progress.
        await handOverOrExplain(refund, reqId, unkeyed);
        log.info(idsOf(refund, reqId), 'refund still at Stripe under its key; handed to the worker');
        throw unkeyed ? unkeyedHandOver(refundInProgress(refund), refund) : refundInProgress(refund);
      }
      if (isTransientStripeError(err) || looking) {
        // Stripe may or may not have made the refund; the worker finishes it with the same idempotency key,
        // and the reserved amount stays reserved until then.
        await handOverOrExplain(refund, reqId, unkeyed);
        // Stripe's error is logged once, by the error handler, as the cause of the 503 thrown below.
        log.info(idsOf(refund, reqId), 'refund outcome unknown; handed to the worker');
        const problem = toProblem(err, 'refund');
        const check = `Check /refund-status/${publicRequestId(refund)}.`;
        const handedOver = new ProblemError(
          problem.status,
          classifyStripeError(err) === 'auth'
            ? "Stripe refused the service's credentials, not this refund: it is kept, its amount reserved, and " +
                `will be made in the background once the service's Stripe key is fixed. ${check}`
            : `Stripe did not confirm the refund; it will be completed in the background. ${check}`,
          { ...problem.extras, code: problem.extras.code ?? 'upstream_unavailable' },
        );
        throw unkeyed ? unkeyedHandOver(handedOver, refund) : handedOver;
      }
      if (overRefundCode(err) && !lowered) {
        // Asked for what is left, which was fixed at acceptance: Stripe has less left now (as in process()).
        const lower = await lowerToWhatIsLeft(refund, reqId);
        if (lower) return makeNow(lower, input, idempotencyKey, reqId, true);
      }
      const over = overRefundCode(err);
      // Refused for want of money left: the refunds Stripe has are learnt before the refusal is recorded. One of them
      // may be this request's (an earlier call's, its answer lost), and learnt after, the refund was first recorded,
      // announced and counted as failed, then put right as made.
      if (over) await learnRefundsAtStripe(refund, reqId);
      const given = await recordFailure(refund.requestId, failureReasonOf(err), reqId);
      // Tied meanwhile to the refund Stripe made for it (another delivery's call, learnt from Stripe's list just now
      // or by lowerToWhatIsLeft, or applied by a webhook): made, not refused, as the worker takes it too.
      if (given?.stripeRefundId) return given;
      log.info({ ...idsOf(refund, reqId), reason: failureReasonOf(err) }, 'refund refused by Stripe');
      if (over) {
        // The same refusal as the ledger's own check (409), made by Stripe because of refunds the ledger had
        // not heard of: not a malformed request (400), and worth telling apart from one.
        throw new ProblemError(
          409,
          `Stripe has less left to refund on ${refund.paymentIntentId} than ${refund.amount}: refunds were made ` +
            `outside this service (e.g. in the Stripe dashboard). GET /payment-intent/${refund.paymentIntentId} ` +
            'says how much is refunded now.',
          {
            code: over,
            ...(over === 'amount_exceeds_refundable' && input.amount !== undefined && { param: 'amount' }),
            cause: err,
          },
        );
      }
      throw toProblem(err, 'payment_intent');
    }
    // Outside the try: Stripe made the refund, so a store failure here (the database went silent) must not
    // be taken for Stripe's refusal and mark it failed. It surfaces as a 5xx (503 store_unavailable when the
    // database is unreachable); the row stays processing until a webhook settles it or the stuck-refund sweep
    // has the worker ask Stripe again under the same idempotency key, and a retry of the request finds the
    // same refund.
    let saved: Refund;
    try {
      saved = await recordStripeRefund(refund.requestId, stripeRefund, reqId);
    } catch (err) {
      throw unrecordedRefundProblem(
        err,
        refund,
        input.request_id === undefined && idempotencyKey === undefined,
      );
    }
    log.info({ ...idsOf(refund, reqId), refund_id: stripeRefund.id, status: saved.status }, 'refund made');
    return saved;
  }

  return {
    accept,

    /** POST /refund: accept, ask Stripe now, answer with Stripe's result. */
    /** `reqId`: the HTTP request's id, for the log lines (the request's other lines carry it as reqId). */
    async refundNow(
      caller: Caller,
      input: RefundInput,
      idempotencyKey?: string,
      reqId?: string,
      /** Told the request_id generated for a request sent with neither request_id nor Idempotency-Key. */
      onRequestId?: (requestId: string) => void,
    ): Promise<Refund> {
      const { refund, created } = await accept(caller, input, 'sync', idempotencyKey, reqId, onRequestId);
      if (created) return makeNow(refund, input, idempotencyKey, reqId);
      // A synchronous refund no attempt is at work on: its request's accept committed with the answer lost (the
      // client got a 503), or the process making it died. Left so, it waits for the stuck-refund sweep (ten
      // minutes) while every retry is told it is in progress: this retry makes it now, as an attempt of its own
      // under the same Stripe idempotency key, so it is made once even if another attempt races it.
      // Only if the row is still as this retry read it (the attempts it counted): of retries that found it idle
      // together, one begins the attempt and the others are answered as for a refund in progress, rather than each
      // looking at Stripe and calling it (the calls meet under one key, but each spends an attempt, hands the
      // refund to the worker again when Stripe does not answer, and moves on to the next key sooner).
      if (!refund.stripeRefundId && isIdle(refund)) {
        const taken = await store.refunds.beginAttempt(refund.requestId, refund.attempts);
        if (taken) {
          log.info(
            { ...idsOf(taken, reqId), attempts: taken.attempts },
            'refund no attempt was at work on; making it',
          );
          return makeNow(taken, input, idempotencyKey, reqId);
        }
        // Taken over by another retry, or settled meanwhile (a webhook, the worker): answered as it is now.
        return replayAnswer((await store.refunds.get(refund.requestId)) ?? refund);
      }
      return replayAnswer(refund);
    },

    /** POST /refund-async: accept and queue durably; the worker does the rest. */
    /** `reqId`: as for refundNow. */
    async refundLater(
      caller: Caller,
      input: RefundInput,
      idempotencyKey?: string,
      reqId?: string,
      /** Told the request_id generated for a request sent with neither request_id nor Idempotency-Key. */
      onRequestId?: (requestId: string) => void,
    ): Promise<Refund> {
      const { refund, created } = await accept(caller, input, 'async', idempotencyKey, reqId, onRequestId);
      if (created) log.info({ ...idsOf(refund, reqId), amount: refund.amount }, 'refund queued');
      // A replay gets the answer the first request got, whatever the worker has done since (10 concurrent
      // retries of one request must all read the same); GET /refund-status is where progress shows.
      if (!created && refund.mode === 'async') return { ...refund, status: 'queued' };
      // The request_id of a refund POST /refund was asked for (same body: the same refund, made at most once). Its
      // first answer was no 202 to repeat, so it is answered as it stands; one that has failed is not "queued
      // successfully" (nothing is queued, and no refund will be made) but refused as POST /refund refuses it.
      if (!created && (refund.status === 'failed' || refund.status === 'canceled'))
        throw refundFailed(refund);
      return refund;
    },

    async status(caller: Caller, requestId: string): Promise<Refund> {
      const refund =
        (await store.refunds.getForOwner(requestKey(caller.owner, requestId), caller.owner)) ??
        // Versions before c1ab382 (and their processes during a rolling update) recorded a dashboard refund under
        // `stripe:<refund id>` as it was, outside its owner's namespace; its outcome message names that id.
        (caller.owner && requestId.startsWith(EXTERNAL_REQUEST_PREFIX)
          ? await store.refunds.getForOwner(requestId, caller.owner)
          : null);
      if (!refund) throw new ProblemError(404, 'No such refund request.', { code: 'resource_missing' });
      return refund;
    },

    /**
     * The worker's step for one queued refund. Safe to run any number of times for the same key:
     * a finished refund is left alone, and Stripe sees the same idempotency key every time.
     */
    async process(key: string, isLastAttempt: boolean, opts: ProcessOptions = {}): Promise<ProcessResult> {
      const { reqId } = opts;
      // One statement: queued → processing, one more attempt; null when there is nothing left to send.
      const begun = await store.refunds.beginAttempt(key);
      if (!begun) {
        const known = await store.refunds.get(key);
        return known ? { kind: 'done', refund: known } : { kind: 'failed', reason: 'unknown refund request' };
      }
      let refund = begun;
      // Set when a wait for the ceiling was given up (the worker stopping): its rejection passes on as it came.
      let stoppedWaiting = false;
      // Waited for before each of the attempt's calls (on a retry: the look at Stripe's refunds, then the refund),
      // rather than before the ledger reads, so the ceiling holds at Stripe's end and redeliveries of finished
      // refunds do not spend it. Given up before any refund was sent, the attempt is taken back.
      const nextTurn = async () => {
        try {
          await opts.beforeStripeCall?.();
        } catch (err) {
          stoppedWaiting = true;
          const taken = await store.refunds.takeBackAttempt(key, refund.attempts).catch((e: unknown) => {
            log.warn({ err: e, ...idsOf(refund, reqId) }, 'could not take back an attempt that sent nothing');
            return false;
          });
          if (taken) log.debug(idsOf(refund, reqId), 'attempt taken back; no refund was sent to Stripe');
          throw err;
        }
      };
      await nextTurn();
      // Whether this attempt lowered the refund to what is left at Stripe (lowerToWhatIsLeft): once at most.
      let lowered = false;
      // Whether this attempt has sent Stripe the refund itself (a POST) yet.
      let sent = false;
      for (;;) {
        try {
          // An earlier call (a previous attempt, or the synchronous path's) may have reached Stripe with its
          // answer lost. Stripe keeps idempotency keys for 24 hours only, and a retry can come later than that
          // (workers or the database down that long): look for the refund first rather than make a second one.
          if (refund.attempts > 1) {
            const made = await findStripeRefund(refund, reqId);
            if (made) {
              const saved = await recordStripeRefund(key, made, reqId);
              log.info(
                { ...idsOf(refund, reqId), refund_id: made.id, status: saved.status },
                'refund found at Stripe',
              );
              return { kind: 'done', refund: saved };
            }
            // The look took the turn; the refund waits for the next one.
            if (!sent) await nextTurn();
          }
          sent = true;
          const stripeRefund = await callStripe(refund, reqId);
          const saved = await recordAttempt(refund, stripeRefund, reqId);
          log.info(
            { ...idsOf(refund, reqId), refund_id: stripeRefund.id, status: saved.status },
            'queued refund made',
          );
          return { kind: 'done', refund: saved };
        } catch (err) {
          // Stopped while waiting for the ceiling's next turn: nothing but a look was sent, and the attempt is back.
          if (stoppedWaiting) throw err;
          // The store, not Stripe, failed (maybe after Stripe made the refund): no attempt is spent on it and no
          // failure is recorded; the worker runs the step again once the store answers.
          if (err instanceof StoreUnavailableError) throw err;
          const reason = failureReasonOf(err);
          if (isLastAttempt && isIdempotencyKeyInUse(err)) {
            // A request under the refund's key is running at Stripe right now: another delivery's, in this process or
            // another (a relay's republish, a sweep's copy), whose answer settles the row, or the call of a POST
            // /refund whose SDK gave up on it (its hand-over is this message), whose answer nobody records but a
            // webhook. Giving up here would mark failed, and announce as failed, a refund Stripe is making. A refund
            // still without a Stripe id is left to the stuck-refund sweep, which queues it again once untouched for
            // ten minutes, and the worker then finds it at Stripe. (Reached only after every attempt of this message
            // found the key in use: minutes, at the default WORKER_RETRY_DELAYS_MS.)
            log.info(
              idsOf(refund, reqId),
              'refund is at Stripe through another delivery; leaving it to that one',
            );
            return { kind: 'done', refund };
          }
          if (isTransientStripeError(err) && !isLastAttempt) {
            // With the error: Stripe's for an outage (no request data in it), else the service's own (the ledger's
            // write refused, a bug), of which the reason alone would say nothing.
            log.warn({ ...idsOf(refund, reqId), reason, err }, 'refund attempt failed; will retry');
            return { kind: 'retry', reason };
          }
          if (isTransientStripeError(err)) {
            // The last answer was lost, not refused: Stripe may have made the refund. Look before calling it failed.
            let made: Stripe.Refund | null;
            try {
              made = await findStripeRefund(refund, reqId);
            } catch {
              // Stripe cannot say either (still unreachable). `failed` would release the amount for other refunds
              // and tell other services the money did not move, while Stripe may have made this one.
              return leftUnresolved(refund, reason, reqId);
            }
            if (made) {
              const saved = await recordStripeRefund(key, made, reqId);
              log.info(
                { ...idsOf(refund, reqId), refund_id: made.id, status: saved.status },
                'refund found at Stripe after retries',
              );
              return { kind: 'done', refund: saved };
            }
            // The last call got no answer at all (STRIPE_TIMEOUT_MS passed, the connection dropped): it may still be at
            // work at Stripe, whose list shows a refund only once it is made. `failed` would release the amount and
            // tell the client the money did not move while Stripe is moving it. Left `processing` instead: the
            // stuck-refund sweep's attempt looks at Stripe first, once no call of this one can still be running.
            if (err instanceof Stripe.errors.StripeConnectionError)
              return leftUnresolved(refund, reason, reqId);
            // Stripe refused the service's key (revoked, or a restricted key without the refund permission, whose
            // lists still answer): kept `processing`, its amount reserved, and made by the stuck-refund sweep's attempt
            // once the key is fixed, as README promises. Marked failed, the client had to ask again.
            if (classifyStripeError(err) === 'auth') {
              log.error(
                { ...idsOf(refund, reqId), reason },
                "Stripe refuses the service's key for refunds; the refund is kept and tried again every ten minutes",
              );
              return { kind: 'failed', reason: `key_refused:${reason}` };
            }
          }
          if (overRefundCode(err) && !lowered) {
            // Asked for what is left, which was fixed at acceptance: Stripe has less left now.
            const lower = await lowerToWhatIsLeft(refund, reqId);
            if (lower) {
              refund = lower;
              lowered = true;
              continue;
            }
          }
          // Refused for want of money left: the refunds Stripe has are learnt before the refusal is recorded, as in
          // makeNow. One of them may be this refund's, and then it is made: learnt after, the row was failed and
          // announced so first, and this attempt, reading the row from before, dead-lettered a refund Stripe made.
          if (overRefundCode(err)) await learnRefundsAtStripe(refund, reqId);
          const given = await recordFailure(
            key,
            isTransientStripeError(err) ? `retries_exhausted:${reason}` : reason,
            reqId,
          );
          // Tied to the refund Stripe made (learnt just now, or applied by a webhook meanwhile): not failed, and its
          // webhooks finish it.
          if (given?.stripeRefundId) return { kind: 'done', refund: given };
          log.warn({ ...idsOf(refund, reqId), reason }, 'refund failed');
          return { kind: 'failed', reason };
        }
      }
    },

    applyStripeRefund,

    /** For a message dead-lettered for a reason the worker did not decide: failed, unless Stripe made it. */
    giveUpUnlessMade,
    outcomeOf,
  };
}
