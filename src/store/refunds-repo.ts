import { sql, type Kysely, type QueryCreator, type Selectable } from 'kysely';
import { fromDbTime, fromJson, nowIso, toIso, toJson, toNumber } from './codec.js';
import type { TimeInput } from './codec.js';
import {
  NEW_OUTBOX_COLUMNS,
  PAYMENT_COLUMNS,
  REFUND_COLUMNS,
  qualified,
  type Database,
  type PaymentsTable,
  type RefundsTable,
} from './database.js';
import {
  OPEN_REFUND_STATUSES,
  REFUND_STATUSES,
  RELEASED_REFUND_STATUSES,
  isRefundStatus,
  refundStatusesBefore,
} from './refund-status.js';
import type { RefundStatus } from './refund-status.js';
import type { NewOutboxMessage } from './outbox-repo.js';
import { addOutboxMessageQuiet } from './outbox-repo.js';
import { placeholders, queryTemplate, type Param } from './query-template.js';
import { committedOfPayment } from './committed.js';
import { THREE_DECIMAL_CURRENCIES, WHOLE_HUNDREDS_CURRENCIES } from '../money/currencies.js';
import { atomically, requireTransaction } from './repo-context.js';
import { afterLastChange } from './changed-at.js';
import type { Dialect } from './migrations.js';
import { toPayment } from './payments-repo.js';
import type { Payment } from './payments-repo.js';
import type { RepoContext } from './repo-context.js';

export type RefundMode = RefundsTable['mode'];

export interface Refund {
  /** Our id for the request (client-supplied or generated); also the Stripe idempotency key seed. */
  requestId: string;
  owner: string;
  paymentIntentId: string;
  amount: number;
  currency: string | null;
  reason: string | null;
  status: RefundStatus;
  stripeRefundId: string | null;
  failureReason: string | null;
  attempts: number;
  mode: RefundMode;
  /** Hash of the request body, to tell an idempotent retry from a conflicting reuse of requestId. */
  requestHash: string | null;
  metadata: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  /**
   * The id (X-Request-Id) of the HTTP request that asked for the refund, for the x-request-id header of its outcome
   * messages; null for a refund made outside the service, or accepted by a version before migration 0010.
   */
  httpRequestId: string | null;
}

export interface NewRefund {
  requestId: string;
  owner?: string;
  paymentIntentId: string;
  amount: number;
  currency?: string | null;
  reason?: string | null;
  status: RefundStatus;
  stripeRefundId?: string | null;
  failureReason?: string | null;
  attempts?: number;
  mode: RefundMode;
  requestHash?: string | null;
  metadata?: Record<string, string>;
  createdAt?: TimeInput;
  httpRequestId?: string | null;
}

/** Fields that may change without a status move. */
export type RefundFields = Partial<
  Pick<Refund, 'stripeRefundId' | 'failureReason' | 'attempts' | 'currency'>
>;

export interface RefundsRepo {
  /** Throws DuplicateKeyError on a taken requestId or stripeRefundId. */
  insert(r: NewRefund): Promise<Refund>;
  /**
   * Inserts the refund and the outbox message that queues it, atomically (an accepted async refund).
   * On PostgreSQL one statement (a data-modifying CTE), one round trip instead of two; elsewhere two
   * statements in one transaction. Throws DuplicateKeyError like insert (or on a taken messageId).
   * The message is available from the refund's createdAt unless `message.availableAt` says otherwise (a
   * row leased to the relay that will publish it, see OutboxRelay.handOff). Answers the refund and the
   * message's outbox id.
   */
  insertAnnounced(r: NewRefund, message: NewOutboxMessage): Promise<{ refund: Refund; outboxId: number }>;
  /**
   * PostgreSQL only (absent elsewhere): accepts an async refund in one statement, outside any transaction.
   * The payment row is locked and what its refunds hold is read after the lock, as lockForAccept does;
   * the refund (`amount` of `r`, or what is left when it is null; the payment's currency) and its outbox
   * message are written only when the payment is `succeeded` and owned by `r.owner`, no refund holds
   * `r.requestId`, and the amount is positive, within what is left and in the currency's step (a multiple of
   * 10 in a three-decimal currency, of 100 in isk and ugx). Otherwise null, with nothing written: the caller runs the transactional check, which
   * says why or finds another way (a replay, an intent visible through its session). Throws
   * DuplicateKeyError like insertAnnounced.
   */
  acceptAnnounced?(
    r: Omit<NewRefund, 'amount' | 'currency'> & { amount: number | null },
    message: NewOutboxMessage,
  ): Promise<{ refund: Refund; outboxId: number } | null>;
  get(requestId: string): Promise<Refund | null>;
  /**
   * The refund, its row locked until the transaction ends (inside store.transaction() only): on PostgreSQL a
   * SELECT ... FOR UPDATE, which waits for a transaction writing the row to end, so that every statement after it
   * reads the row as that transaction left it; on SQLite a plain read (BEGIN IMMEDIATE already serialises writers).
   */
  lockForUpdate(requestId: string): Promise<Refund | null>;
  getForOwner(requestId: string, owner: string): Promise<Refund | null>;
  getByStripeId(stripeRefundId: string): Promise<Refund | null>;
  /**
   * Gives the refunds of payment intent `paymentIntentId` recorded with no owner ('': a dashboard refund whose event
   * was applied before its payment had an owner) to `owner`, in one UPDATE, their request ids and everything else
   * as they were: for a payment given an owner (UNOWNED_PAYMENTS_OWNER), so that its refunds follow it. Returns how
   * many it gave.
   */
  giveOwnerless(paymentIntentId: string, owner: string): Promise<number>;
  /**
   * Moves the refund forward (see REFUND_STATUS_RANK) and sets the given fields, in one conditional
   * UPDATE. Returns false, changing nothing, when the refund is unknown or already at or past
   * `to.status`, so a late or repeated event can never move it back.
   */
  advance(requestId: string, to: { status: RefundStatus } & RefundFields): Promise<boolean>;
  /**
   * Gives up on a refund Stripe never answered for (retries exhausted, refused, poison message): moves it
   * to `failed` like advance, but only while it has no Stripe id. A row tied to a Stripe refund (by the
   * worker's answer or a webhook) was made by Stripe; its status is Stripe's to set, and a failed row with
   * a Stripe id could never be put right (see correctFromStripe). Returns whether it moved.
   */
  giveUp(requestId: string, failureReason: string): Promise<boolean>;
  /**
   * The one exception to forward-only: a refund we marked `failed` without ever hearing from Stripe
   * (retries exhausted, worker gave up) that Stripe later shows it did make. Only such a row (failed, no
   * Stripe id) moves, in one conditional UPDATE; returns whether it did.
   */
  correctFromStripe(
    requestId: string,
    to: { status: RefundStatus; stripeRefundId: string } & RefundFields,
  ): Promise<boolean>;
  /**
   * The worker's first write for a refund it is about to send to Stripe: queued → processing and one more
   * attempt, in one statement. Returns the row, or null when there is nothing to send (unknown, already
   * final, or already answered by Stripe).
   *
   * With `expectedAttempts` (POST /refund taking over a synchronous refund no attempt is at work on), a
   * compare-and-set: the attempt begins only while the row is still as the caller read it, `processing` with no
   * Stripe id and `expectedAttempts` attempts. Every attempt begun since counted one, so of the retries that read
   * the row idle together, one begins an attempt and the others get null.
   */
  beginAttempt(requestId: string, expectedAttempts?: number): Promise<Refund | null>;
  /**
   * Takes back the attempt beginAttempt counted for a refund whose Stripe call was never made (the worker stopped
   * while the call waited for the rate limiter): one attempt fewer, and `queued` again when it was the first of a
   * queued refund (mode async: queued until its first attempt). Only while the row is as beginAttempt left it
   * (`attempts`, processing, no Stripe id), so an attempt another delivery began meanwhile is left alone.
   * Returns whether it did.
   */
  takeBackAttempt(requestId: string, attempts: number): Promise<boolean>;
  /**
   * Records Stripe's answer for a refund this worker has in flight (`processing`, no Stripe id yet) and
   * the outbox message that announces it, atomically: the message is written exactly
   * when the row moves. `message` receives the row as it will read after the move (`updatedAt` = `now`)
   * and returns the message. On PostgreSQL one statement (a data-modifying CTE), so a worker attempt costs
   * one round trip instead of four; elsewhere a transaction of two. Null when someone got there first
   * (a webhook): nothing is written and the caller takes the general path. The message is available from
   * `now` unless it says otherwise (see insertAnnounced); answers the row and the message's outbox id.
   */
  settleAttemptAnnounced(
    current: Refund,
    to: {
      status: RefundStatus;
      stripeRefundId: string;
      currency: string | null;
      failureReason: string | null;
    },
    message: (settled: Refund) => NewOutboxMessage,
  ): Promise<{ refund: Refund; outboxId: number } | null>;
  /**
   * Sets non-status fields, leaving the row (and its updated_at) as it is when they already hold these values.
   * Whether the refund exists. Throws DuplicateKeyError if stripeRefundId is taken.
   */
  patch(requestId: string, fields: RefundFields): Promise<boolean>;
  /**
   * Lowers the amount a refund reserves from `from` to `to` and sets its `metadata` in one conditional UPDATE:
   * only while it is `processing` with no Stripe refund and its amount is still `from`, and only downwards (`to`
   * positive and below `from`), so what the ledger reserves can only shrink. For a refund asked for what is left
   * that Stripe refused for want of money left (RefundService.process). Returns whether it did.
   */
  lowerAmount(
    requestId: string,
    from: number,
    to: number,
    metadata: Record<string, string>,
  ): Promise<boolean>;
  /**
   * For the stuck-refund sweep: marks refund `requestId` as just looked at (updated_at = `now`) if it is still in
   * flight without a Stripe refund and unchanged since before `staleBefore`; true when it was. One conditional
   * UPDATE, so of several processes sweeping at once exactly one gets true for a given refund in a round (the
   * others find it changed, once the winner commits on PostgreSQL), and a refund a worker or webhook moved after
   * the sweep read it is left alone. Both times by the same clock (the database's, where it has one of its own).
   */
  touchIfStale(requestId: string, staleBefore: TimeInput, now: TimeInput): Promise<boolean>;
  /** Returns the new attempt count, or null when the refund is unknown. */
  incrementAttempts(requestId: string): Promise<number | null>;
  /** Sum of amounts not released (failed/canceled): in-flight refunds count against the payment. */
  sumCommitted(paymentIntentId: string): Promise<number>;
  /**
   * The reads that start accepting a refund, inside store.transaction(): the refund already recorded
   * under `requestId` (a replay), the payment row locked as PaymentsRepo.lockForUpdate locks it, and
   * what its refunds hold (sumCommitted), read after the lock. One statement on both: SQLite's BEGIN
   * IMMEDIATE already serialises writers; on PostgreSQL the sum is taken by a volatile function called
   * once the row is locked, so that it sees every refund committed while this transaction waited for the
   * lock. Only when the payment has no row is the replay check a statement of its own. `committed` is 0
   * when there is no payment row or the request is a replay.
   */
  lockForAccept(
    requestId: string,
    paymentIntentId: string,
  ): Promise<{ existing: Refund | null; payment: Payment | null; committed: number }>;
  /** Oldest-updated first, for sweepers picking up stuck refunds. */
  listByStatus(statuses: readonly RefundStatus[], limit: number): Promise<Refund[]>;
  listForPaymentIntent(paymentIntentId: string): Promise<Refund[]>;
  /**
   * Refunds per status, zero when none: every status by default, or only `statuses` (then it reads just
   * their ranges of the status index, where counting every status walks the whole table).
   */
  countByStatus<S extends RefundStatus = RefundStatus>(statuses?: readonly S[]): Promise<Record<S, number>>;
  /**
   * Per status, when the refund left in it longest last changed (read from the status index); a status no
   * refund is in is absent.
   */
  oldestUpdateByStatus<S extends RefundStatus>(statuses: readonly S[]): Promise<Partial<Record<S, string>>>;
  /** Keyset page ordered by (createdAt, requestId); see PaymentsRepo.listCreatedSince. */
  listCreatedSince(since: TimeInput, limit: number, afterRequestId?: string): Promise<Refund[]>;
}

/**
 * oldestUpdateByStatus's statement (exported for the query-plan test); `statuses` must not be empty. One row per
 * status, each a `min(updated_at)` of its own: one seek into refunds_status_idx (status, updated_at) per status.
 * As one `min() ... where status in (...) group by status` both databases read every index entry (or row) of
 * every refund in those statuses, on every /metrics scrape (SQLite, on the event loop: 8.5 ms median at 100,000
 * refunds in flight).
 */
export function oldestUpdateByStatusQuery(db: Kysely<Database>, statuses: readonly RefundStatus[]) {
  const oldestOf = (status: RefundStatus) =>
    db.selectNoFrom((eb) => [
      eb.val(status).as('status'),
      eb
        .selectFrom('refunds')
        .select((inner) => inner.fn.min('updated_at').as('m'))
        .where('status', '=', status)
        .as('oldest'),
    ]);
  const [first, ...rest] = statuses.map(oldestOf);
  return rest.reduce((query, next) => query.unionAll(next), first!);
}

export function toRefund(row: Selectable<RefundsTable>): Refund {
  if (!isRefundStatus(row.status))
    throw new Error(`refund ${row.request_id} has unknown status ${row.status}`);
  return {
    requestId: row.request_id,
    owner: row.owner,
    paymentIntentId: row.payment_intent_id,
    amount: toNumber(row.amount),
    currency: row.currency,
    reason: row.reason,
    status: row.status,
    stripeRefundId: row.stripe_refund_id,
    failureReason: row.failure_reason,
    attempts: toNumber(row.attempts),
    mode: row.mode,
    requestHash: row.request_hash,
    metadata: fromJson<Record<string, string>>(row.metadata) ?? {},
    createdAt: fromDbTime(row.created_at),
    updatedAt: fromDbTime(row.updated_at),
    httpRequestId: row.http_request_id,
  };
}

function fieldColumns(fields: RefundFields) {
  return {
    ...(fields.stripeRefundId !== undefined && { stripe_refund_id: fields.stripeRefundId }),
    ...(fields.failureReason !== undefined && { failure_reason: fields.failureReason }),
    ...(fields.attempts !== undefined && { attempts: fields.attempts }),
    ...(fields.currency !== undefined && { currency: fields.currency }),
  };
}

type RefundRow = Selectable<RefundsTable>;
type PaymentRow = Selectable<PaymentsTable>;

/** A new refund row names every column. */
const INSERT_COLUMNS = REFUND_COLUMNS;
type InsertRow = Record<(typeof INSERT_COLUMNS)[number], unknown>;

// The statements every accepted refund and every worker attempt run, built once (see query-template.ts).
const getByRequestId = queryTemplate<{ requestId: string }, RefundRow>(
  'refunds.get',
  ['requestId'],
  (db, p) => db.selectFrom('refunds').select(REFUND_COLUMNS).where('request_id', '=', p('requestId')),
);

const lockByRequestId = {
  sqlite: getByRequestId,
  postgres: queryTemplate<{ requestId: string }, RefundRow>('refunds.lockForUpdate', ['requestId'], (db, p) =>
    db.selectFrom('refunds').select(REFUND_COLUMNS).where('request_id', '=', p('requestId')).forUpdate(),
  ),
};

const getForOwner = queryTemplate<{ requestId: string; owner: string }, RefundRow>(
  'refunds.getForOwner',
  ['requestId', 'owner'],
  (db, p) =>
    db
      .selectFrom('refunds')
      .select(REFUND_COLUMNS)
      .where('request_id', '=', p('requestId'))
      .where('owner', '=', p('owner')),
);

/**
 * PostgreSQL: the `updated_at` of a refund accepted to the queue (an insert; its later changes, notBeforeLastChange):
 * `at` (this process's clock), but no earlier than PostgreSQL's clock says. The stuck-refund sweep judges a refund's
 * age by PostgreSQL's clock: written by a process whose clock is behind, a refund looked that much older the moment it
 * was written, and every sweep queued it again while it was in flight. (SQLite's clock is this machine's.)
 */
const notBeforeDbNow = (at: unknown) => sql<string>`greatest(cast(${at} as timestamptz), now())`;

/**
 * The `updated_at` to write on a change of a refund (Stripe's answer, a refusal, a webhook, an attempt begun): `at`
 * (this process's clock), but at least a millisecond after the row's own `updated_at` (see afterLastChange) and, on
 * PostgreSQL, no earlier than its clock. By this process's clock alone, a change after one stamped by notBeforeDbNow
 * (its acceptance to the queue) was dated before it whenever this clock was behind PostgreSQL's: GET /refund-status
 * showed a refund `processing` at one time and `succeeded` earlier, by the skew.
 */
const notBeforeLastChange = (dialect: Dialect, at: unknown) =>
  afterLastChange(dialect, at, { dbClock: true });

const insertRefund = queryTemplate<InsertRow, RefundRow>('refunds.insert', INSERT_COLUMNS, (db, p) =>
  db.insertInto('refunds').values(placeholders(p, INSERT_COLUMNS)).returning(REFUND_COLUMNS),
);

/** The same insert answering nothing: the caller already holds every value the row will have. */
const insertRefundQuiet = queryTemplate<InsertRow, never>('refunds.insertQuiet', INSERT_COLUMNS, (db, p) =>
  db.insertInto('refunds').values(placeholders(p, INSERT_COLUMNS)),
);

const OUTBOX_PARAMS = [
  'destination',
  'routingKey',
  'messageId',
  'payload',
  'headers',
  'availableAt',
] as const;
type OutboxParams = Record<(typeof OUTBOX_PARAMS)[number], unknown>;
const ANNOUNCED_COLUMNS = NEW_OUTBOX_COLUMNS;

/** The template parameters of announcedInsert for `message`, available from `availableAt`. */
function outboxParams(message: NewOutboxMessage, availableAt: string): OutboxParams {
  return {
    destination: message.destination,
    routingKey: message.routingKey ?? '',
    messageId: message.messageId,
    payload: toJson(message.payload),
    headers: message.headers ? toJson(message.headers) : null,
    availableAt,
  };
}

/**
 * The PostgreSQL CTE that writes the outbox message announcing the refund row of CTE `from` (the row the
 * statement inserted or moved): its columns stamped with the template parameter `at` and available from
 * `availableAt`. Selected from that CTE's row, so the message is written exactly when the row is.
 */
function announcedInsert<P extends OutboxParams>(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the CTEs before it differ per statement
  qb: QueryCreator<any>,
  p: Param<P>,
  from: 'inserted' | 'settled',
  at: keyof P & string,
) {
  return qb
    .insertInto('outbox')
    .columns(ANNOUNCED_COLUMNS)
    .expression((eb) =>
      eb
        .selectFrom(from)
        .select((sb) => [
          sb.val(p('destination')).as('destination'),
          sb.val(p('routingKey')).as('routing_key'),
          sb.val(p('messageId')).as('message_id'),
          sb.val(p('payload')).as('payload'),
          sb.val(p('headers')).as('headers'),
          sb.val(p(at)).as('created_at'),
          sb.val(p('availableAt')).as('available_at'),
        ]),
    )
    .returning('id');
}

/** PostgreSQL: the refund row and the message that queues it, one statement; answers the row and the message's id. */
const insertAnnouncedPg = queryTemplate<InsertRow & OutboxParams, RefundRow & { outbox_id: string | number }>(
  'refunds.insertAnnounced',
  [...INSERT_COLUMNS, ...OUTBOX_PARAMS],
  (db, p) =>
    db
      .with('inserted', (qb) =>
        qb
          .insertInto('refunds')
          .values({ ...placeholders(p, INSERT_COLUMNS), updated_at: notBeforeDbNow(p('updated_at')) })
          .returning(REFUND_COLUMNS),
      )
      .with('announced', (qb) => announcedInsert(qb, p, 'inserted', 'created_at'))
      .selectFrom(['inserted', 'announced'])
      .select(qualified('inserted', REFUND_COLUMNS))
      .select('announced.id as outbox_id'),
);

const sumCommitted = queryTemplate<{ paymentIntentId: string }, { total: number | string | null }>(
  'refunds.sumCommitted',
  ['paymentIntentId'],
  (db, p) =>
    db
      .selectFrom('refunds')
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number | string>('amount'), eb.lit(0)).as('total'))
      .where('payment_intent_id', '=', p('paymentIntentId'))
      .where('status', 'not in', RELEASED_REFUND_STATUSES),
);

type BeginParams = { requestId: string; now: string };
/**
 * After the row's last change; with `dbClock` also no earlier than PostgreSQL's clock (see notBeforeDbNow). Before,
 * by the clocks alone: a refund whose last change was dated ahead of them went back in time as an attempt began.
 */
const beginUpdate = (db: Kysely<Database>, p: Param<BeginParams>, dialect: Dialect, dbClock: boolean) =>
  db
    .updateTable('refunds')
    .set((eb) => ({
      status: eb.case().when('status', '=', 'queued').then('processing').else(eb.ref('status')).end(),
      attempts: eb('attempts', '+', 1),
      updated_at: afterLastChange(dialect, p('now'), { dbClock }),
    }))
    .where('request_id', '=', p('requestId'))
    .where('status', 'in', ['queued', 'processing'])
    .where('stripe_refund_id', 'is', null)
    .returning(REFUND_COLUMNS);

/** The worker's attempt: the refund stays in flight until Stripe answers, judged by the stuck-refund sweep. */
const beginAttemptTemplates = {
  sqlite: queryTemplate<BeginParams, RefundRow>('refunds.beginAttempt', ['requestId', 'now'], (db, p) =>
    beginUpdate(db, p, 'sqlite', false),
  ),
  postgres: queryTemplate<BeginParams, RefundRow>('refunds.beginAttempt', ['requestId', 'now'], (db, p) =>
    beginUpdate(db, p, 'postgres', true),
  ),
};

/**
 * beginAttempt's compare-and-set (a takeover): only a `processing` row with the attempts the caller read. The
 * attempt count is the token: every attempt begun adds one, and the only write that takes one back
 * (takeBackAttempt) does so for an attempt that sent nothing, leaving the row as idle as before. One statement,
 * so on PostgreSQL a concurrent takeover waits for the row lock and then finds the count moved on (READ COMMITTED
 * checks the WHERE again on the row it waited for). By this process's clock (not PostgreSQL's): the takeover's own
 * process judges by it when the attempt is idle (a synchronous refund's retry); but after the row's last change.
 */
type BeginFromParams = BeginParams & { attempts: number };
const beginFromUpdate = (db: Kysely<Database>, p: Param<BeginFromParams>, dialect: Dialect) =>
  beginUpdate(db, p, dialect, false).where('status', '=', 'processing').where('attempts', '=', p('attempts'));
const beginAttemptFromTemplates = {
  sqlite: queryTemplate<BeginFromParams, RefundRow>(
    'refunds.beginAttemptFrom',
    ['requestId', 'now', 'attempts'],
    (db, p) => beginFromUpdate(db, p, 'sqlite'),
  ),
  postgres: queryTemplate<BeginFromParams, RefundRow>(
    'refunds.beginAttemptFrom',
    ['requestId', 'now', 'attempts'],
    (db, p) => beginFromUpdate(db, p, 'postgres'),
  ),
};

type SettleParams = {
  requestId: string;
  status: RefundStatus;
  stripeRefundId: string;
  currency: string | null;
  failureReason: string | null;
  now: string;
};
const SETTLE_NAMES = ['requestId', 'status', 'stripeRefundId', 'currency', 'failureReason', 'now'] as const;

/** `now`, or, when it is not later than `last` (an earlier change's time), one millisecond after `last`. */
function justAfter(now: string, last: string): string {
  const lastMs = Date.parse(last);
  return Number.isNaN(lastMs) || Date.parse(now) > lastMs ? now : new Date(lastMs + 1).toISOString();
}

/**
 * Records Stripe's answer on a refund this worker has in flight (`processing`, no Stripe id yet), at `now`, chosen
 * before the statement (its outcome message's id holds it): only while the row's last change is earlier, so that a
 * change made since the caller read the row (the sweep's touch, a field), dated after `now`, is never followed by one
 * dated before it. Otherwise nothing is written and the caller takes the general path, which dates in SQL.
 */
const settleUpdate = (db: Pick<Kysely<Database>, 'updateTable'>, p: Param<SettleParams>) =>
  db
    .updateTable('refunds')
    .set({
      stripe_refund_id: p('stripeRefundId'),
      currency: p('currency'),
      failure_reason: p('failureReason'),
      status: p('status'),
      updated_at: p('now'),
    })
    .where('request_id', '=', p('requestId'))
    .where('status', '=', 'processing')
    .where('stripe_refund_id', 'is', null)
    .where('updated_at', '<', p('now'))
    .returning(REFUND_COLUMNS);

const settleAttempt = queryTemplate<SettleParams, RefundRow>(
  'refunds.settleAttempt',
  SETTLE_NAMES,
  settleUpdate,
);

/**
 * PostgreSQL only: the row moves and its outbox message is written by one statement, or neither; answers
 * the row and the message's id.
 */
const settleAnnouncedPg = queryTemplate<
  SettleParams & OutboxParams,
  RefundRow & { outbox_id: string | number }
>('refunds.settleAttemptAnnounced', [...SETTLE_NAMES, ...OUTBOX_PARAMS], (db, p) =>
  db
    .with('settled', () => settleUpdate(db, p))
    .with('announced', (qb) => announcedInsert(qb, p, 'settled', 'now'))
    .selectFrom(['settled', 'announced'])
    .select(qualified('settled', REFUND_COLUMNS))
    .select('announced.id as outbox_id'),
);

/** Whether the request id is taken: the refund itself is read only then (a replay), not on every accept. */
type AcceptRow = PaymentRow & { r_request_id: string | null; committed?: number | string | null };

/**
 * The payment row and whether a refund under `requestId` exists (left join). PostgreSQL locks the payment row
 * (FOR UPDATE OF p; the refunds side of the join is not locked). Each dialect's template adds the sum.
 */
type AcceptParams = { requestId: string; paymentIntentId: string };
const acceptRead = (db: Kysely<Database>, p: Param<AcceptParams>) =>
  db
    .selectFrom('payments as p')
    .leftJoin('refunds as r', (join) => join.on('r.request_id', '=', p('requestId')))
    .select(qualified('p', PAYMENT_COLUMNS))
    .select('r.request_id as r_request_id')
    .where('p.id', '=', p('paymentIntentId'));
const lockForAcceptTemplates = {
  sqlite: queryTemplate<AcceptParams, AcceptRow>(
    'refunds.lockForAccept',
    ['requestId', 'paymentIntentId'],
    (db, p) => acceptRead(db, p).select(committedOfPayment),
  ),
  // The lock, then the sum, in one statement: the materialized CTE hands its row on only once FOR UPDATE has
  // it locked, and refunds_committed (migration 0005) reads with a snapshot taken when it is called, so the
  // sum counts every refund committed while this transaction waited for the lock.
  postgres: queryTemplate<AcceptParams, AcceptRow>(
    'refunds.lockForAccept',
    ['requestId', 'paymentIntentId'],
    (db, p) =>
      db
        .with(
          (cte) => cte('locked').materialized(),
          () => acceptRead(db, p).forUpdate('p'),
        )
        .selectFrom('locked')
        .select([...qualified('locked', PAYMENT_COLUMNS), 'locked.r_request_id'])
        .select(sql<string>`refunds_committed(locked.id)`.as('committed')),
  ),
};

/**
 * PostgreSQL: an async refund accepted by one statement, with no transaction of its own (see
 * RefundsRepo.acceptAnnounced). It locks the payment row and reads what its refunds hold after the lock, as
 * lockForAccept does; then the refund and its outbox message are inserted only from a row that passes
 * every check of the transactional path. The amount is the one asked for or, without one, what is left.
 */
const ACCEPT_FAST_COLUMNS = INSERT_COLUMNS.filter(
  (c): c is Exclude<(typeof INSERT_COLUMNS)[number], 'amount' | 'currency'> =>
    c !== 'amount' && c !== 'currency',
);
type AcceptFastParams = Record<(typeof ACCEPT_FAST_COLUMNS)[number], unknown> &
  OutboxParams & { requestedAmount: unknown };
const acceptAnnouncedPg = queryTemplate<AcceptFastParams, RefundRow & { outbox_id: string | number }>(
  'refunds.acceptAnnounced',
  [...ACCEPT_FAST_COLUMNS, ...OUTBOX_PARAMS, 'requestedAmount'],
  (db, p) =>
    db
      .with(
        (cte) => cte('locked').materialized(),
        () =>
          acceptRead(db, (name) => p(name === 'requestId' ? 'request_id' : 'payment_intent_id')).forUpdate(
            'p',
          ),
      )
      .with(
        (cte) => cte('held').materialized(),
        (qb) =>
          qb
            .selectFrom('locked')
            .select(['locked.currency', 'locked.amount'])
            .select(sql<number>`refunds_committed(locked.id)`.as('committed'))
            .where('locked.r_request_id', 'is', null)
            .where('locked.status', '=', 'succeeded')
            .where('locked.owner', '=', p('owner')),
      )
      .with('fits', (qb) =>
        qb
          .selectFrom('held')
          .select('held.currency')
          .select(
            sql<number>`coalesce(cast(${p('requestedAmount')} as bigint), held.amount - held.committed)`.as(
              'amount',
            ),
          )
          .select(sql<number>`held.amount - held.committed`.as('remaining')),
      )
      .with('inserted', (qb) =>
        qb
          .insertInto('refunds')
          .columns(INSERT_COLUMNS)
          .expression((eb) =>
            eb
              .selectFrom('fits')
              .select((sb) =>
                INSERT_COLUMNS.map((c) =>
                  c === 'amount'
                    ? sb.ref('fits.amount').as('amount')
                    : c === 'currency'
                      ? sb.ref('fits.currency').as('currency')
                      : c === 'updated_at'
                        ? notBeforeDbNow(p('updated_at')).as('updated_at')
                        : sb.val(p(c)).as(c),
                ),
              )
              .where('fits.remaining', '>', 0)
              .where('fits.amount', '>', 0)
              .whereRef('fits.amount', '<=', 'fits.remaining')
              // A three-decimal currency's amount must end in 0 (the transactional path says so with a 400).
              .where((eb) =>
                eb.or([
                  eb('fits.currency', 'not in', [...THREE_DECIMAL_CURRENCIES]),
                  eb(sql<number>`fits.amount % 10`, '=', 0),
                ]),
              )
              // So must an isk or ugx amount in 00 (whole units).
              .where((eb) =>
                eb.or([
                  eb('fits.currency', 'not in', [...WHOLE_HUNDREDS_CURRENCIES]),
                  eb(sql<number>`fits.amount % 100`, '=', 0),
                ]),
              ),
          )
          .returning(REFUND_COLUMNS),
      )
      .with('announced', (qb) => announcedInsert(qb, p, 'inserted', 'created_at'))
      .selectFrom(['inserted', 'announced'])
      .select(qualified('inserted', REFUND_COLUMNS))
      .select('announced.id as outbox_id'),
);

/**
 * RefundsRepo.listByStatus: the `limit` refunds in `statuses` that changed longest ago (ties by request id). For
 * the sweep's `queued` and `processing` the statement's predicate is that of refunds_in_flight_idx (migration 0009),
 * which holds just those refunds in this order: a page reads its rows and stops. Through the status index both
 * databases read and sorted every refund in flight for each page (on SQLite, on the event loop: 0.2-0.4 s a page
 * at 100,000). The statuses are written as literals, in REFUND_STATUSES order, as in the index's predicate.
 */
export function listByStatusQuery(
  db: Kysely<Database>,
  dialect: 'sqlite' | 'postgres',
  statuses: readonly RefundStatus[],
  limit: number,
) {
  for (const s of statuses) if (!isRefundStatus(s)) throw new TypeError(`unknown refund status ${String(s)}`);
  const wanted = REFUND_STATUSES.filter((s) => statuses.includes(s));
  const inFlight = wanted.length === 2 && wanted[0] === 'queued' && wanted[1] === 'processing';
  // SQLite: `+status`, as in the index (see migration 0009), or it would pick the status index and sort.
  const status =
    inFlight && dialect === 'sqlite' ? sql<string>`+${sql.ref('status')}` : sql.ref<string>('status');
  return db
    .selectFrom('refunds')
    .select(REFUND_COLUMNS)
    .where(
      status,
      'in',
      wanted.map((s) => sql.lit(s)),
    )
    .orderBy('updated_at')
    .orderBy('request_id')
    .limit(limit);
}

export function createRefundsRepo(ctx: RepoContext): RefundsRepo {
  const { db } = ctx;
  const find = (column: 'request_id' | 'stripe_refund_id', value: string) =>
    db.selectFrom('refunds').select(REFUND_COLUMNS).where(column, '=', value);
  /** The `updated_at` of a change made now: after the row's last change and, on PostgreSQL, never before its clock. */
  const changedAt = () => notBeforeLastChange(ctx.dialect, nowIso());

  const insertRow = (r: NewRefund): InsertRow => {
    if (!isRefundStatus(r.status)) throw new TypeError(`unknown refund status ${String(r.status)}`);
    const created = r.createdAt === undefined ? nowIso() : toIso(r.createdAt);
    return {
      request_id: r.requestId,
      owner: r.owner ?? '',
      payment_intent_id: r.paymentIntentId,
      amount: r.amount,
      currency: r.currency ?? null,
      reason: r.reason ?? null,
      status: r.status,
      stripe_refund_id: r.stripeRefundId ?? null,
      failure_reason: r.failureReason ?? null,
      attempts: r.attempts ?? 0,
      mode: r.mode,
      request_hash: r.requestHash ?? null,
      metadata: toJson(r.metadata ?? {}),
      created_at: created,
      updated_at: created,
      http_request_id: r.httpRequestId ?? null,
    };
  };

  return {
    async insert(r) {
      const row = await insertRefund.first(db, ctx.dialect, insertRow(r));
      if (!row) throw new Error(`refund ${r.requestId} was not inserted`);
      return toRefund(row);
    },

    async insertAnnounced(r, message) {
      const values = insertRow(r);
      const created = values.created_at as string;
      const availableAt = message.availableAt === undefined ? created : toIso(message.availableAt);
      if (ctx.dialect === 'postgres') {
        const row = await insertAnnouncedPg.first(db, ctx.dialect, {
          ...values,
          ...outboxParams(message, availableAt),
        });
        if (!row) throw new Error(`refund ${r.requestId} was not inserted`);
        return { refund: toRefund(row), outboxId: toNumber(row.outbox_id) };
      }
      // SQLite: two statements in one transaction, neither reading back what it wrote (every column is
      // given, so the stored row is `values`; RETURNING cost ~a fifth of each insert).
      const outboxId = await atomically(ctx, async (tx) => {
        await insertRefundQuiet.run(tx, ctx.dialect, values);
        return addOutboxMessageQuiet(tx, ctx.dialect, { ...message, availableAt }, created);
      });
      return { refund: toRefund(values as RefundRow), outboxId };
    },

    ...(ctx.dialect === 'postgres' && {
      async acceptAnnounced(r, message) {
        const { amount: _amount, currency: _currency, ...values } = insertRow({ ...r, amount: 0 });
        const created = values.created_at as string;
        const row = await acceptAnnouncedPg.first(db, ctx.dialect, {
          ...values,
          requestedAmount: r.amount,
          ...outboxParams(message, message.availableAt === undefined ? created : toIso(message.availableAt)),
        });
        return row ? { refund: toRefund(row), outboxId: toNumber(row.outbox_id) } : null;
      },
    }),

    async get(requestId) {
      const row = await getByRequestId.first(db, ctx.dialect, { requestId });
      return row ? toRefund(row) : null;
    },

    async lockForUpdate(requestId) {
      requireTransaction(ctx, 'refunds.lockForUpdate');
      const row = await lockByRequestId[ctx.dialect].first(db, ctx.dialect, { requestId });
      return row ? toRefund(row) : null;
    },

    async getForOwner(requestId, owner) {
      const row = await getForOwner.first(db, ctx.dialect, { requestId, owner });
      return row ? toRefund(row) : null;
    },

    async getByStripeId(stripeRefundId) {
      const row = await find('stripe_refund_id', stripeRefundId).executeTakeFirst();
      return row ? toRefund(row) : null;
    },

    async giveOwnerless(paymentIntentId, owner) {
      const result = await db
        .updateTable('refunds')
        .set({ owner })
        .where('payment_intent_id', '=', paymentIntentId)
        .where('owner', '=', '')
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    async advance(requestId, to) {
      if (!isRefundStatus(to.status)) throw new TypeError(`unknown refund status ${String(to.status)}`);
      const from = refundStatusesBefore(to.status);
      if (from.length === 0) return false;
      // The allowed "from" statuses go into the WHERE clause, so the check and the write are one
      // statement: two racing updates cannot both pass a stale check.
      const result = await db
        .updateTable('refunds')
        .set({ ...fieldColumns(to), status: to.status, updated_at: changedAt() })
        .where('request_id', '=', requestId)
        .where('status', 'in', from)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async giveUp(requestId, failureReason) {
      const result = await db
        .updateTable('refunds')
        .set({ status: 'failed', failure_reason: failureReason, updated_at: changedAt() })
        .where('request_id', '=', requestId)
        .where('status', 'in', OPEN_REFUND_STATUSES)
        .where('stripe_refund_id', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async beginAttempt(requestId, expectedAttempts) {
      const now = nowIso();
      const row =
        expectedAttempts === undefined
          ? await beginAttemptTemplates[ctx.dialect].first(db, ctx.dialect, { requestId, now })
          : await beginAttemptFromTemplates[ctx.dialect].first(db, ctx.dialect, {
              requestId,
              now,
              attempts: expectedAttempts,
            });
      return row ? toRefund(row) : null;
    },

    async takeBackAttempt(requestId, attempts) {
      const result = await db
        .updateTable('refunds')
        .set((eb) => {
          // An async refund's first attempt goes back to `queued`: a change GET /refund-status shows, dated after the
          // attempt it takes back (it showed `processing` at that time). Otherwise the refund stays `processing` and
          // keeps its time, by which a synchronous retry judges the attempt idle (beginAttemptFrom).
          const backToQueued = eb.and([eb('mode', '=', 'async'), eb('attempts', '=', 1)]);
          return {
            status: eb.case().when(backToQueued).then('queued').else(eb.ref('status')).end(),
            attempts: eb('attempts', '-', 1),
            updated_at: eb
              .case()
              .when(backToQueued)
              .then(changedAt())
              .else(eb.ref('updated_at'))
              .end()
              .$castTo<string>(),
          };
        })
        .where('request_id', '=', requestId)
        .where('attempts', '=', attempts)
        .where('status', '=', 'processing')
        .where('stripe_refund_id', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async settleAttemptAnnounced(current, to, message) {
      if (!isRefundStatus(to.status)) throw new TypeError(`unknown refund status ${String(to.status)}`);
      // Not dated before the change the caller read (its attempt begun, stamped no earlier than PostgreSQL's clock):
      // just after it while this process's clock is behind (see notBeforeLastChange). Chosen here, not in the
      // statement, because the message describing the row is made before it, with this time in its id; the statement
      // writes nothing if the row changed since at a time not before it (see settleUpdate).
      const now = justAfter(nowIso(), current.updatedAt);
      const settled: Refund = {
        ...current,
        status: to.status,
        stripeRefundId: to.stripeRefundId,
        currency: to.currency,
        failureReason: to.failureReason,
        updatedAt: now,
      };
      const m = message(settled);
      const availableAt = m.availableAt === undefined ? now : toIso(m.availableAt);
      const params: SettleParams = {
        requestId: current.requestId,
        status: to.status,
        stripeRefundId: to.stripeRefundId,
        currency: to.currency,
        failureReason: to.failureReason,
        now,
      };
      if (ctx.dialect === 'postgres') {
        const row = await settleAnnouncedPg.first(db, ctx.dialect, {
          ...params,
          ...outboxParams(m, availableAt),
        });
        return row ? { refund: toRefund(row), outboxId: toNumber(row.outbox_id) } : null;
      }
      return atomically(ctx, async (tx) => {
        const row = await settleAttempt.first(tx, ctx.dialect, params);
        if (!row) return null;
        const outboxId = await addOutboxMessageQuiet(tx, ctx.dialect, { ...m, availableAt }, now);
        return { refund: toRefund(row), outboxId };
      });
    },

    async correctFromStripe(requestId, to) {
      if (!isRefundStatus(to.status)) throw new TypeError(`unknown refund status ${String(to.status)}`);
      const result = await db
        .updateTable('refunds')
        .set({ ...fieldColumns(to), status: to.status, updated_at: changedAt() })
        .where('request_id', '=', requestId)
        .where('status', '=', 'failed')
        .where('stripe_refund_id', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async patch(requestId, fields) {
      const columns = fieldColumns(fields);
      if (Object.keys(columns).length === 0)
        return (await find('request_id', requestId).executeTakeFirst()) !== undefined;
      // Written only where a field differs: every charge.refunded event re-applies each refund of the charge, and
      // a refund that ended long ago had its updated_at moved to the event's time with nothing changed.
      const result = await db
        .updateTable('refunds')
        .set({ ...columns, updated_at: changedAt() })
        .where('request_id', '=', requestId)
        .where((eb) =>
          eb.or(
            Object.entries(columns).map(([column, value]) =>
              eb(column as keyof typeof columns, 'is distinct from', value),
            ),
          ),
        )
        .executeTakeFirst();
      if (result.numUpdatedRows > 0n) return true;
      return (await find('request_id', requestId).executeTakeFirst()) !== undefined;
    },

    async lowerAmount(requestId, from, to, metadata) {
      if (!Number.isSafeInteger(to) || to <= 0 || to >= from) return false;
      const result = await db
        .updateTable('refunds')
        .set({
          amount: to,
          metadata: toJson(metadata),
          // Still in flight: judged by the stuck-refund sweep, as beginAttempt's write (no earlier than PostgreSQL's clock).
          updated_at: changedAt(),
        })
        .where('request_id', '=', requestId)
        .where('amount', '=', from)
        .where('status', '=', 'processing')
        .where('stripe_refund_id', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async touchIfStale(requestId, staleBefore, now) {
      const result = await db
        .updateTable('refunds')
        .set({ updated_at: toIso(now) })
        .where('request_id', '=', requestId)
        .where('status', 'in', ['queued', 'processing'])
        .where('stripe_refund_id', 'is', null)
        .where('updated_at', '<', toIso(staleBefore))
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async incrementAttempts(requestId) {
      const row = await db
        .updateTable('refunds')
        .set((eb) => ({ attempts: eb('attempts', '+', 1), updated_at: changedAt() }))
        .where('request_id', '=', requestId)
        .returning('attempts')
        .executeTakeFirst();
      return row ? toNumber(row.attempts) : null;
    },

    async sumCommitted(paymentIntentId) {
      const row = await sumCommitted.first(db, ctx.dialect, { paymentIntentId });
      return toNumber(row?.total);
    },

    async lockForAccept(requestId, paymentIntentId) {
      requireTransaction(ctx, 'refunds.lockForAccept');
      const row = await lockForAcceptTemplates[ctx.dialect].first(db, ctx.dialect, {
        requestId,
        paymentIntentId,
      });
      if (!row) {
        // No payment row: a replay is still found (its payment may be another one).
        const existing = await getByRequestId.first(db, ctx.dialect, { requestId });
        return { existing: existing ? toRefund(existing) : null, payment: null, committed: 0 };
      }
      // toPayment reads the payment's own columns and ignores the joined ones.
      const payment = toPayment(row);
      if (row.r_request_id !== null && row.r_request_id !== undefined) {
        // A replay: read the refund in full, in the same transaction.
        const existing = await getByRequestId.first(db, ctx.dialect, { requestId });
        if (!existing) throw new Error(`refund ${requestId} vanished inside its transaction`);
        return { existing: toRefund(existing), payment, committed: 0 };
      }
      return { existing: null, payment, committed: toNumber(row.committed) };
    },

    async listByStatus(statuses, limit) {
      if (statuses.length === 0) return [];
      const rows = await listByStatusQuery(db, ctx.dialect, statuses, limit).execute();
      return rows.map(toRefund);
    },

    async listForPaymentIntent(paymentIntentId) {
      const rows = await db
        .selectFrom('refunds')
        .select(REFUND_COLUMNS)
        .where('payment_intent_id', '=', paymentIntentId)
        .orderBy('created_at')
        .orderBy('request_id')
        .execute();
      return rows.map(toRefund);
    },

    async countByStatus<S extends RefundStatus>(statuses?: readonly S[]) {
      const wanted = statuses ?? (REFUND_STATUSES as readonly RefundStatus[] as readonly S[]);
      let query = db
        .selectFrom('refunds')
        .select((eb) => ['status', eb.fn.countAll<number | string>().as('n')])
        .groupBy('status');
      if (statuses) {
        if (statuses.length === 0) return {} as Record<S, number>;
        query = query.where('status', 'in', [...statuses]);
      }
      const rows = await query.execute();
      const counts = Object.fromEntries(wanted.map((s) => [s, 0])) as Record<S, number>;
      for (const row of rows)
        if ((wanted as readonly string[]).includes(row.status)) counts[row.status as S] = toNumber(row.n);
      return counts;
    },

    async oldestUpdateByStatus<S extends RefundStatus>(statuses: readonly S[]) {
      if (statuses.length === 0) return {};
      const rows = await oldestUpdateByStatusQuery(db, statuses).execute();
      const oldest: Partial<Record<S, string>> = {};
      for (const row of rows)
        if (row.oldest !== null) oldest[row.status as S] = fromDbTime(row.oldest as string | Date);
      return oldest;
    },

    async listCreatedSince(since, limit, afterRequestId) {
      const from = toIso(since);
      const rows = await db
        .selectFrom('refunds')
        .select(REFUND_COLUMNS)
        .where((eb) =>
          afterRequestId === undefined
            ? eb('created_at', '>=', from)
            : eb.or([
                eb('created_at', '>', from),
                eb.and([eb('created_at', '=', from), eb('request_id', '>', afterRequestId)]),
              ]),
        )
        .orderBy('created_at')
        .orderBy('request_id')
        .limit(limit)
        .execute();
      return rows.map(toRefund);
    },
  };
}
