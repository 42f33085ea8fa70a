import { sql } from 'kysely';
import type { Kysely, Selectable } from 'kysely';
import { addMs, fromDbTime, fromDbTimeOrNull, fromJson, nowIso, toIso, toJson, toNumber } from './codec.js';
import type { TimeInput } from './codec.js';
import {
  NEW_OUTBOX_COLUMNS,
  OUTBOX_COLUMNS,
  qualified,
  type Database,
  type OutboxTable,
} from './database.js';
import type { Dialect } from './migrations.js';
import { placeholders, queryTemplate } from './query-template.js';
import { PG_PURGE_BATCH, purgeInSlices } from './purge.js';
import type { RepoContext } from './repo-context.js';

export const DEFAULT_CLAIM_LEASE_MS = 30_000;
const MAX_ERROR_LENGTH = 2_000;

/** What markFailed keeps of `error` as the row's lastError (a later try can tell whether it failed the same way). */
export function outboxErrorText(error: string): string {
  return error.slice(0, MAX_ERROR_LENGTH);
}

export interface OutboxMessage {
  id: number;
  /** A queue name (`stripe_refund_requests`) or `exchange:<name>`; the relay decides how to publish. */
  destination: string;
  routingKey: string;
  /** Unique; also the AMQP message id so consumers can de-duplicate. */
  messageId: string;
  payload: unknown;
  headers: Record<string, unknown> | null;
  createdAt: string;
  /** Not published before this time (backoff, or another relay's lease). */
  availableAt: string;
  attempts: number;
  sentAt: string | null;
  lastError: string | null;
}

/** An outbox row a relay holds, and the end of its lease (the availableAt the claim or hand-off gave it). */
export interface HeldLease {
  id: number;
  availableAt: string;
}

export interface NewOutboxMessage {
  destination: string;
  routingKey?: string;
  messageId: string;
  payload: unknown;
  headers?: Record<string, unknown> | null;
  availableAt?: TimeInput;
}

export interface OutboxRepo {
  /** Call inside the transaction that makes the change the message announces. Throws DuplicateKeyError on a taken messageId. */
  add(entry: NewOutboxMessage): Promise<OutboxMessage>;
  /**
   * Claims up to `limit` unsent rows available at `now` (and those written available at once, whatever their
   * writer's clock said), oldest first, and leases them by moving
   * their availableAt to `now + leaseMs`; another relay skips them until the lease runs out. On
   * PostgreSQL rows locked by a concurrent claimer are skipped (FOR UPDATE SKIP LOCKED).
   */
  claimBatch(limit: number, now?: TimeInput, leaseMs?: number): Promise<OutboxMessage[]>;
  markSent(ids: readonly number[], now?: TimeInput): Promise<number>;
  /**
   * Ends the lease on unsent rows a relay holds but will not publish itself (their availableAt becomes
   * `now`), so the next claim by any relay takes them; returns how many rows were still unsent.
   */
  release(ids: readonly number[], now?: TimeInput): Promise<number>;
  /**
   * Extends to `until` the leases a relay still holds: of `held` (each row with the availableAt its lease gave
   * it), those unsent whose availableAt is still that lease, in one statement. Answers the ids extended; a row
   * left out was sent or taken by another relay since (a later claim always gives a later availableAt). With
   * `until` now, it ends those leases instead: `release` of only the rows still under the caller's lease. A row may
   * be given under several leases (one a renewal is moving it to): it is matched under whichever it is.
   */
  extendLeases(held: readonly HeldLease[], until: TimeInput): Promise<number[]>;
  /**
   * Records the failure and schedules the next try at `retryAt`. Given `lease` (the availableAt of the lease the
   * caller held, or of each lease it may hold: one being renewed), only while the row is still under that lease: a
   * relay that held the row past its lease (its process paused) does not move the lease of the relay that took the
   * row over and is publishing it.
   */
  markFailed(
    id: number,
    error: string,
    retryAt: TimeInput,
    lease?: TimeInput | readonly TimeInput[],
  ): Promise<boolean>;
  pendingCount(): Promise<number>;
  /** When the oldest unsent row was written (by id, through the unsent-rows index); null when none waits. */
  oldestPendingCreatedAt(): Promise<string | null>;
  /**
   * Deletes rows sent before `olderThan`; returns how many. In statements of about `batch` rows: on SQLite a
   * statement holds the event loop and the write lock while it runs (a day's backlog of 125,000 rows in one: 1.2 s),
   * so 1,000 by default; on PostgreSQL each must end within DATABASE_TIMEOUT_MS, so PG_PURGE_BATCH (see purgeInSlices).
   */
  purgeSent(olderThan: TimeInput, batch?: number): Promise<number>;
  /** The headers of the rows with these message ids, sent or not, by message id; rows without headers are left out. */
  headersOf(messageIds: readonly string[]): Promise<Map<string, Record<string, unknown>>>;
}

export function toOutboxMessage(row: Selectable<OutboxTable>): OutboxMessage {
  return {
    id: toNumber(row.id),
    destination: row.destination,
    routingKey: row.routing_key,
    messageId: row.message_id,
    payload: fromJson<unknown>(row.payload),
    headers: fromJson<Record<string, unknown>>(row.headers),
    createdAt: fromDbTime(row.created_at),
    availableAt: fromDbTime(row.available_at),
    attempts: toNumber(row.attempts),
    sentAt: fromDbTimeOrNull(row.sent_at),
    lastError: row.last_error,
  };
}

const ADD_COLUMNS = NEW_OUTBOX_COLUMNS;

/** Every accepted refund adds one row: built once (see query-template.ts). */
const addMessage = queryTemplate<Record<(typeof ADD_COLUMNS)[number], unknown>, Selectable<OutboxTable>>(
  'outbox.add',
  ADD_COLUMNS,
  (db, p) => db.insertInto('outbox').values(placeholders(p, ADD_COLUMNS)).returning(OUTBOX_COLUMNS),
);

/** The same insert answering nothing, for writers that do not need the row back. */
const addMessageQuiet = queryTemplate<Record<(typeof ADD_COLUMNS)[number], unknown>, never>(
  'outbox.addQuiet',
  ADD_COLUMNS,
  (db, p) => db.insertInto('outbox').values(placeholders(p, ADD_COLUMNS)),
);

function addValues(entry: NewOutboxMessage, created: string): Record<(typeof ADD_COLUMNS)[number], unknown> {
  return {
    destination: entry.destination,
    routing_key: entry.routingKey ?? '',
    message_id: entry.messageId,
    payload: toJson(entry.payload),
    headers: entry.headers ? toJson(entry.headers) : null,
    created_at: created,
    available_at: entry.availableAt === undefined ? created : toIso(entry.availableAt),
  };
}

/**
 * addOutboxMessage without reading the row back; answers the row's id. For drivers that report the id of
 * an insert (SQLite): elsewhere it throws rather than answer a wrong one. Throws DuplicateKeyError on a
 * taken messageId.
 */
export async function addOutboxMessageQuiet(
  db: Kysely<Database>,
  dialect: Dialect,
  entry: NewOutboxMessage,
  created: string,
): Promise<number> {
  const { insertId } = await addMessageQuiet.run(db, dialect, addValues(entry, created));
  if (insertId === undefined) throw new Error(`outbox message ${entry.messageId}: the insert reported no id`);
  return Number(insertId);
}

/** Writes one message with `db` (the store or a transaction); other repositories use it for atomic writes. */
export async function addOutboxMessage(
  db: Kysely<Database>,
  dialect: Dialect,
  entry: NewOutboxMessage,
  created: string,
): Promise<OutboxMessage> {
  const row = await addMessage.first(db, dialect, addValues(entry, created));
  if (!row) throw new Error(`outbox message ${entry.messageId} was not inserted`);
  return toOutboxMessage(row);
}

/**
 * The relay's claim as one statement: pick the oldest available unsent rows and lease them. On
 * PostgreSQL the pick is a CTE (evaluated once) whose rows are locked, skipping those a concurrent
 * relay holds; on SQLite the statement holds the write lock. The pick walks outbox_unsent_idx, so its
 * cost follows the rows waiting, not the sent rows kept for a week.
 */
export function claimBatchQuery(
  db: Kysely<Database>,
  dialect: Dialect,
  limit: number,
  at: string,
  leaseMs: number,
) {
  const lease = addMs(at, leaseMs);
  const oldestAvailable = (qb: Pick<Kysely<Database>, 'selectFrom'>) =>
    qb
      .selectFrom('outbox')
      .select('id')
      .where('sent_at', 'is', null)
      // A row written available at once (available_at = created_at: never leased, failed or given back) is
      // available whatever the clock of the process that wrote it: a writer whose clock is ahead of `at` (a relay
      // goes by the database's clock) would otherwise keep its rows from every relay for as long as it is ahead.
      .where((eb) => eb.or([eb('available_at', '<=', at), eb('available_at', '=', eb.ref('created_at'))]))
      .orderBy('id')
      .limit(limit);
  return dialect === 'postgres'
    ? db
        .with('next', (qb) => oldestAvailable(qb).forUpdate().skipLocked())
        .updateTable('outbox')
        .set({ available_at: lease })
        .from('next')
        .whereRef('outbox.id', '=', 'next.id')
        .returning(qualified('outbox', OUTBOX_COLUMNS))
    : db
        .updateTable('outbox')
        .set({ available_at: lease })
        .where('id', 'in', oldestAvailable(db))
        .returning(OUTBOX_COLUMNS);
}

/**
 * A list of ids as one parameter, so a batch of any size runs the same statement (one prepared
 * statement, instead of one per batch size crowding the statement cache).
 */
function idList(dialect: Dialect, ids: readonly number[]) {
  // node-postgres sends a JS array as one array parameter; SQLite reads the ids from JSON.
  return dialect === 'postgres'
    ? sql<number>`(select unnest(cast(${[...ids]} as bigint[])))`
    : sql<number>`(select value from json_each(${JSON.stringify(ids)}))`;
}

/**
 * The lease renewal as one statement whatever the number of rows: the (id, lease) pairs as one parameter, joined
 * to the rows by primary key, so a row is extended only while its lease is still the one the relay holds.
 */
export function extendLeasesQuery(
  db: Kysely<Database>,
  dialect: Dialect,
  held: readonly HeldLease[],
  until: string,
) {
  const pairs =
    dialect === 'postgres'
      ? sql<{ id: number; lease: string }>`(select unnest(cast(${held.map((h) => h.id)} as bigint[])) as id,
          unnest(cast(${held.map((h) => h.availableAt)} as timestamptz[])) as lease)`
      : sql<{ id: number; lease: string }>`(select json_extract(value, '$[0]') as id,
          json_extract(value, '$[1]') as lease from json_each(${JSON.stringify(held.map((h) => [h.id, h.availableAt]))}))`;
  return db
    .updateTable('outbox')
    .from(pairs.as('held'))
    .set({ available_at: until })
    .whereRef('outbox.id', '=', 'held.id')
    .whereRef('outbox.available_at', '=', 'held.lease')
    .where('outbox.sent_at', 'is', null)
    .returning('outbox.id');
}

export function createOutboxRepo(ctx: RepoContext): OutboxRepo {
  const { db } = ctx;

  /** Sets `values` on those of `ids` not sent yet; returns how many. */
  async function setOnUnsent(
    ids: readonly number[],
    values: { sent_at: string } | { available_at: string },
  ): Promise<number> {
    if (ids.length === 0) return 0;
    const result = await db
      .updateTable('outbox')
      .set(values)
      .where('id', 'in', idList(ctx.dialect, ids))
      .where('sent_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows);
  }

  return {
    async add(entry) {
      return addOutboxMessage(db, ctx.dialect, entry, nowIso());
    },

    async claimBatch(limit, now = new Date(), leaseMs = DEFAULT_CLAIM_LEASE_MS) {
      const rows = await claimBatchQuery(db, ctx.dialect, limit, toIso(now), leaseMs).execute();
      return rows.map(toOutboxMessage).sort((a, b) => a.id - b.id);
    },

    async markSent(ids, now = new Date()) {
      return setOnUnsent(ids, { sent_at: toIso(now) });
    },

    async release(ids, now = new Date()) {
      return setOnUnsent(ids, { available_at: toIso(now) });
    },

    async extendLeases(held, until) {
      if (held.length === 0) return [];
      const rows = await extendLeasesQuery(db, ctx.dialect, held, toIso(until)).execute();
      return rows.map((r) => toNumber(r.id));
    },

    async markFailed(id, error, retryAt, lease) {
      let q = db
        .updateTable('outbox')
        .set((eb) => ({
          attempts: eb('attempts', '+', 1),
          last_error: outboxErrorText(error),
          available_at: toIso(retryAt),
        }))
        .where('id', '=', id)
        .where('sent_at', 'is', null);
      if (Array.isArray(lease)) {
        if (lease.length === 0) return false;
        q = q.where('available_at', 'in', lease.map(toIso));
      } else if (lease !== undefined) q = q.where('available_at', '=', toIso(lease as TimeInput));
      const result = await q.executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async pendingCount() {
      const row = await db
        .selectFrom('outbox')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('sent_at', 'is', null)
        .executeTakeFirstOrThrow();
      return toNumber(row.n);
    },

    async oldestPendingCreatedAt() {
      const row = await db
        .selectFrom('outbox')
        .select('created_at')
        .where('sent_at', 'is', null)
        .orderBy('id')
        .limit(1)
        .executeTakeFirst();
      return row ? fromDbTime(row.created_at) : null;
    },

    async purgeSent(olderThan, batch) {
      const cutoff = toIso(olderThan);
      if (ctx.dialect === 'postgres') {
        const size = batch ?? PG_PURGE_BATCH;
        return purgeInSlices(
          async (from) => {
            let q = db
              .selectFrom('outbox')
              .select('sent_at')
              .where('sent_at', 'is not', null)
              .where('sent_at', '<', cutoff);
            if (from !== undefined) q = q.where('sent_at', '>=', from);
            const row = await q.orderBy('sent_at').limit(1).offset(size).executeTakeFirst();
            return row?.sent_at ?? undefined;
          },
          async (from, until) => {
            let q = db.deleteFrom('outbox').where('sent_at', 'is not', null).where('sent_at', '<', cutoff);
            if (from !== undefined) q = q.where('sent_at', '>=', from);
            if (until !== undefined) q = q.where('sent_at', '<', until);
            return Number((await q.executeTakeFirst()).numDeletedRows);
          },
        );
      }
      const size = batch ?? 1_000;
      let total = 0;
      for (;;) {
        const result = await db
          .deleteFrom('outbox')
          .where('id', 'in', (eb) =>
            eb
              .selectFrom('outbox')
              .select('id')
              .where('sent_at', 'is not', null)
              .where('sent_at', '<', cutoff)
              .limit(size),
          )
          .executeTakeFirst();
        const n = Number(result.numDeletedRows);
        total += n;
        if (n < size) return total;
      }
    },

    async headersOf(messageIds) {
      const found = new Map<string, Record<string, unknown>>();
      if (messageIds.length === 0) return found;
      const rows = await db
        .selectFrom('outbox')
        .select(['message_id', 'headers'])
        .where('message_id', 'in', [...messageIds])
        .where('headers', 'is not', null)
        .execute();
      for (const row of rows) {
        const headers = fromJson<Record<string, unknown>>(row.headers);
        if (headers) found.set(row.message_id, headers);
      }
      return found;
    },
  };
}
