import type { Kysely, Selectable } from 'kysely';
import { addMs, fromDbTime, fromDbTimeOrNull, fromJson, nowIso, toIso, toJson, toNumber } from './codec.js';
import type { TimeInput } from './codec.js';
import { WEBHOOK_EVENT_COLUMNS, type Database, type WebhookEventsTable } from './database.js';
import { DEFAULT_CLAIM_LEASE_MS } from './outbox-repo.js';
import { PG_PURGE_BATCH, purgeInSlices } from './purge.js';
import { atomically } from './repo-context.js';
import type { RepoContext } from './repo-context.js';

const MAX_ERROR_LENGTH = 2_000;

/** A Stripe event as received on the webhook (table `webhook_events`). */
export interface InboxEvent {
  eventId: string;
  type: string;
  /** The event's data.object id (pi_, cs_, re_...), for looking events up by object. */
  objectId: string | null;
  payload: unknown;
  receivedAt: string;
  processedAt: string | null;
  attempts: number;
  lastError: string | null;
  availableAt: string;
}

export interface NewInboxEvent {
  eventId: string;
  type: string;
  objectId?: string | null;
  payload: unknown;
  receivedAt?: TimeInput;
}

export interface InboxRepo {
  /** True when stored now, false when the event was already there (Stripe redelivers). Race-safe. */
  insertIfAbsent(e: NewInboxEvent): Promise<boolean>;
  get(eventId: string): Promise<InboxEvent | null>;
  markProcessed(eventId: string, now?: TimeInput): Promise<boolean>;
  markFailed(eventId: string, error: string, retryAt: TimeInput): Promise<boolean>;
  /** Unprocessed events available at `now`, oldest first, leased like OutboxRepo.claimBatch. */
  claimUnprocessed(limit: number, now?: TimeInput, leaseMs?: number): Promise<InboxEvent[]>;
  count(): Promise<number>;
  countUnprocessed(): Promise<number>;
  /**
   * Deletes events applied before `olderThan`, in statements of about `batch` events (short statements on a big
   * table: 1,000 by default on SQLite, where a statement holds the event loop; PG_PURGE_BATCH slices on
   * PostgreSQL, see purgeInSlices); events not applied yet are kept whatever their age. Returns how many were
   * deleted.
   */
  purgeProcessed(olderThan: TimeInput, batch?: number): Promise<number>;
}

export function toInboxEvent(row: Selectable<WebhookEventsTable>): InboxEvent {
  return {
    eventId: row.event_id,
    type: row.type,
    objectId: row.object_id,
    payload: fromJson<unknown>(row.payload),
    receivedAt: fromDbTime(row.received_at),
    processedAt: fromDbTimeOrNull(row.processed_at),
    attempts: toNumber(row.attempts),
    lastError: row.last_error,
    availableAt: fromDbTime(row.available_at),
  };
}

/**
 * One batch of purgeProcessed: up to `batch` events applied before `cutoff`, found through
 * webhook_events_applied_idx (migration 0007), so its cost follows the events due, not the 30 days kept.
 */
export function purgeProcessedBatchQuery(db: Kysely<Database>, cutoff: string, batch: number) {
  return db
    .deleteFrom('webhook_events')
    .where('event_id', 'in', (eb) =>
      eb
        .selectFrom('webhook_events')
        .select('event_id')
        .where('processed_at', 'is not', null)
        .where('processed_at', '<', cutoff)
        .limit(batch),
    );
}

/**
 * PostgreSQL: one slice of purgeProcessed (see purgeInSlices), the events applied before `cutoff` with
 * from <= processed_at < until, read as one range of webhook_events_applied_idx. Batches picked by LIMIT walked
 * again, each, the index entries of the events the batches before them deleted: 1,000,000 events due took 1,001
 * statements and 6.7-10.4 s, against 1.3-1.8 s in slices of PG_PURGE_BATCH.
 */
export function purgeProcessedSliceQuery(
  db: Kysely<Database>,
  cutoff: string,
  from: string | undefined,
  until: string | undefined,
) {
  let q = db
    .deleteFrom('webhook_events')
    .where('processed_at', 'is not', null)
    .where('processed_at', '<', cutoff);
  if (from !== undefined) q = q.where('processed_at', '>=', from);
  if (until !== undefined) q = q.where('processed_at', '<', until);
  return q;
}

export function createInboxRepo(ctx: RepoContext): InboxRepo {
  const { db } = ctx;

  return {
    async insertIfAbsent(e) {
      const received = e.receivedAt === undefined ? nowIso() : toIso(e.receivedAt);
      // ON CONFLICT DO NOTHING rather than catching the violation: on PostgreSQL a failed
      // statement would poison the caller's transaction.
      const result = await db
        .insertInto('webhook_events')
        .values({
          event_id: e.eventId,
          type: e.type,
          object_id: e.objectId ?? null,
          payload: toJson(e.payload),
          received_at: received,
          available_at: received,
        })
        .onConflict((oc) => oc.column('event_id').doNothing())
        .executeTakeFirst();
      return (result.numInsertedOrUpdatedRows ?? 0n) > 0n;
    },

    async get(eventId) {
      const row = await db
        .selectFrom('webhook_events')
        .select(WEBHOOK_EVENT_COLUMNS)
        .where('event_id', '=', eventId)
        .executeTakeFirst();
      return row ? toInboxEvent(row) : null;
    },

    async markProcessed(eventId, now = new Date()) {
      const result = await db
        .updateTable('webhook_events')
        .set({ processed_at: toIso(now), last_error: null })
        .where('event_id', '=', eventId)
        .where('processed_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async markFailed(eventId, error, retryAt) {
      const result = await db
        .updateTable('webhook_events')
        .set((eb) => ({
          attempts: eb('attempts', '+', 1),
          last_error: error.slice(0, MAX_ERROR_LENGTH),
          available_at: toIso(retryAt),
        }))
        .where('event_id', '=', eventId)
        .where('processed_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async claimUnprocessed(limit, now = new Date(), leaseMs = DEFAULT_CLAIM_LEASE_MS) {
      const at = toIso(now);
      const order = new Map<string, number>();
      const rows = await atomically(ctx, async (tx) => {
        const ids = await tx
          .selectFrom('webhook_events')
          .select('event_id')
          .where('processed_at', 'is', null)
          .where('available_at', '<=', at)
          .orderBy('received_at')
          .orderBy('event_id')
          .limit(limit)
          .$if(ctx.dialect === 'postgres', (qb) => qb.forUpdate().skipLocked())
          .execute();
        if (ids.length === 0) return [];
        ids.forEach((r, i) => order.set(r.event_id, i));
        return tx
          .updateTable('webhook_events')
          .set({ available_at: addMs(at, leaseMs) })
          .where(
            'event_id',
            'in',
            ids.map((r) => r.event_id),
          )
          .returning(WEBHOOK_EVENT_COLUMNS)
          .execute();
      });
      // RETURNING has no defined order; hand rows back in the claim's oldest-first order.
      return rows.map(toInboxEvent).sort((a, b) => (order.get(a.eventId) ?? 0) - (order.get(b.eventId) ?? 0));
    },

    async count() {
      const row = await db
        .selectFrom('webhook_events')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .executeTakeFirstOrThrow();
      return toNumber(row.n);
    },

    async purgeProcessed(olderThan, batch) {
      const cutoff = toIso(olderThan);
      if (ctx.dialect === 'postgres') {
        const size = batch ?? PG_PURGE_BATCH;
        return purgeInSlices(
          async (from) => {
            let q = db
              .selectFrom('webhook_events')
              .select('processed_at')
              .where('processed_at', 'is not', null)
              .where('processed_at', '<', cutoff);
            if (from !== undefined) q = q.where('processed_at', '>=', from);
            const row = await q.orderBy('processed_at').limit(1).offset(size).executeTakeFirst();
            return row?.processed_at ?? undefined;
          },
          async (from, until) =>
            Number(
              (await purgeProcessedSliceQuery(db, cutoff, from, until).executeTakeFirst()).numDeletedRows,
            ),
        );
      }
      const size = batch ?? 1_000;
      let total = 0;
      for (;;) {
        const result = await purgeProcessedBatchQuery(db, cutoff, size).executeTakeFirst();
        const n = Number(result.numDeletedRows);
        total += n;
        if (n < size) return total;
      }
    },

    async countUnprocessed() {
      const row = await db
        .selectFrom('webhook_events')
        .select((eb) => eb.fn.countAll<number | string>().as('n'))
        .where('processed_at', 'is', null)
        .executeTakeFirstOrThrow();
      return toNumber(row.n);
    },
  };
}
