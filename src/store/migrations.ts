import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_MIGRATION_LOCK_TABLE, MIGRATION_LOCK_ID, Migrator, sql } from 'kysely';
import type {
  CreateIndexBuilder,
  DatabaseIntrospector,
  Dialect as KyselyDialect,
  Kysely,
  Migration,
  MigrationProvider,
  TableMetadata,
} from 'kysely';
import type { Logger } from 'pino';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see storeMigrations
type AnyDb = Kysely<any>;

export type Dialect = 'sqlite' | 'postgres';

/** What an index step needs of Kysely's builder, whatever columns it names. */
type IndexBuilder = Pick<CreateIndexBuilder<string>, 'compile' | 'execute' | 'toOperationNode'>;

/**
 * What a migration does to the indexes of a table that may already hold rows (a large ledger's refunds, payments,
 * outbox, webhook events). On PostgreSQL a plain CREATE INDEX holds a SHARE lock on its table for the whole build,
 * which stops every insert and update there (refund accepts, outbox rows, webhooks) until it is done, and a plain
 * DROP INDEX an ACCESS EXCLUSIVE one, which stops even reads while it waits for its turn. So there each runs
 * CONCURRENTLY, outside the migration's transaction (see migratePostgres); on SQLite each is a plain statement of
 * the migration's transaction, as it always was.
 */
export interface IndexSteps {
  /** Indexes to build, each as a builder that is not executed here (its statement is run as the dialect needs). */
  readonly build?: readonly ((db: AnyDb) => IndexBuilder)[];
  /** Indexes to drop (those the built ones replace): only once every built one is valid, so reads keep an index. */
  readonly drop?: readonly string[];
}

/**
 * A migration of the service. `indexes` run first, then `up` in a transaction with the bookkeeping row, so the
 * migration counts as applied only once its indexes are valid, and a run that dies anywhere (even between an index
 * and `up`) leaves it unrecorded: the next run does its index steps again (each is skipped when already done) and
 * then `up`, which therefore runs whole exactly once and need not be written to run twice. The price: an index on a
 * table or column a migration adds cannot be among its `indexes`; build it in `up` when the table is new (nobody
 * writes to an empty table being created), or in a later migration when it is on a table that holds rows. On a new
 * PostgreSQL database (its tables made by the same start) the index steps run plainly at the start of `up`'s
 * transaction, as on SQLite.
 */
export interface StoreMigration {
  readonly indexes?: IndexSteps;
  up?(db: AnyDb): Promise<void>;
  down(db: AnyDb): Promise<void>;
}

/**
 * The migrations as Kysely's migrator takes them, each whole in one transaction (its index steps plain statements
 * before its `up`): how SQLite runs them, and how PostgreSQL ran them before index steps were built concurrently.
 * For tests and tools; a PostgreSQL start runs storeMigrations through migratePostgres.
 */
export function buildMigrations(dialect: Dialect): Record<string, Migration> {
  return Object.fromEntries(
    Object.entries(storeMigrations(dialect)).map(([name, m]) => [
      name,
      {
        async up(db: AnyDb) {
          for (const build of m.indexes?.build ?? []) await build(db).execute();
          for (const index of m.indexes?.drop ?? []) await db.schema.dropIndex(index).execute();
          await m.up?.(db);
        },
        down: (db: AnyDb) => m.down(db),
      },
    ]),
  );
}

/**
 * Migrations live in code (not a folder read at run time) so the compiled service needs no extra
 * files. They take `Kysely<any>` on purpose: a migration describes the schema as it was then, not
 * as the current `Database` type says it is. Never edit a released migration; add a new one, which processes of
 * the version before keep working beside during a rolling update: add (columns nullable or with defaults, functions
 * under new names), drop nothing the version before reads, and mind the locks on large tables (README, Upgrading):
 * an index on a table that holds rows is one of the migration's `indexes`, never a statement of its `up`.
 *
 * 0002–0004 and 0007–0009 were released with their index statements in `up`; moving them to `indexes` changed how
 * PostgreSQL runs them (concurrently), not what they leave: the same indexes, the same definitions (a test compares
 * a database migrated each way), and SQLite's statements are the very ones they were.
 */
export function storeMigrations(dialect: Dialect): Record<string, StoreMigration> {
  const pg = dialect === 'postgres';
  // SQLite has no time type; ISO-8601 text sorts and compares correctly as long as every writer
  // uses Date#toISOString(), which the repositories guarantee.
  const time = pg ? 'timestamptz' : 'text';

  return {
    '0001_initial': {
      async up(db: AnyDb) {
        await db.schema
          .createTable('payments')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('kind', 'text', (c) =>
            c.notNull().check(sql`kind in ('checkout_session', 'payment_intent')`),
          )
          .addColumn('owner', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('payment_intent_id', 'text')
          .addColumn('amount', 'bigint', (c) => c.notNull().check(sql`amount >= 0`))
          .addColumn('currency', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('amount_refunded', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('customer_email', 'text')
          .addColumn('created_at', time, (c) => c.notNull())
          .addColumn('updated_at', time, (c) => c.notNull())
          .execute();
        await db.schema.createIndex('payments_owner_idx').on('payments').column('owner').execute();
        await db.schema
          .createIndex('payments_payment_intent_id_idx')
          .on('payments')
          .column('payment_intent_id')
          .execute();
        await db.schema
          .createIndex('payments_created_idx')
          .on('payments')
          .columns(['created_at', 'id'])
          .execute();

        await db.schema
          .createTable('refunds')
          .addColumn('request_id', 'text', (c) => c.primaryKey())
          .addColumn('owner', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('payment_intent_id', 'text', (c) => c.notNull())
          .addColumn('amount', 'bigint', (c) => c.notNull().check(sql`amount >= 0`))
          .addColumn('currency', 'text')
          .addColumn('reason', 'text')
          .addColumn('status', 'text', (c) =>
            c
              .notNull()
              .check(
                sql`status in ('queued', 'processing', 'pending', 'requires_action', 'succeeded', 'failed', 'canceled')`,
              ),
          )
          .addColumn('stripe_refund_id', 'text', (c) => c.unique())
          .addColumn('failure_reason', 'text')
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('mode', 'text', (c) => c.notNull().check(sql`mode in ('sync', 'async', 'external')`))
          .addColumn('request_hash', 'text')
          .addColumn('metadata', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('created_at', time, (c) => c.notNull())
          .addColumn('updated_at', time, (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('refunds_payment_intent_id_idx')
          .on('refunds')
          .column('payment_intent_id')
          .execute();
        await db.schema.createIndex('refunds_owner_idx').on('refunds').column('owner').execute();
        await db.schema
          .createIndex('refunds_status_idx')
          .on('refunds')
          .columns(['status', 'updated_at'])
          .execute();
        await db.schema
          .createIndex('refunds_created_idx')
          .on('refunds')
          .columns(['created_at', 'request_id'])
          .execute();

        await db.schema
          .createTable('outbox')
          .addColumn('id', pg ? 'bigint' : 'integer', (c) =>
            pg ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement(),
          )
          .addColumn('destination', 'text', (c) => c.notNull())
          .addColumn('routing_key', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('message_id', 'text', (c) => c.notNull().unique())
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('headers', 'text')
          .addColumn('created_at', time, (c) => c.notNull())
          .addColumn('available_at', time, (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('sent_at', time)
          .addColumn('last_error', 'text')
          .execute();
        // Partial indexes keep the relay's polling query cheap however many sent rows pile up.
        await db.schema
          .createIndex('outbox_pending_idx')
          .on('outbox')
          .columns(['available_at', 'id'])
          .where(sql.ref('sent_at'), 'is', null)
          .execute();
        await db.schema
          .createIndex('outbox_sent_idx')
          .on('outbox')
          .column('sent_at')
          .where('sent_at', 'is not', null)
          .execute();

        await db.schema
          .createTable('webhook_events')
          .addColumn('event_id', 'text', (c) => c.primaryKey())
          .addColumn('type', 'text', (c) => c.notNull())
          .addColumn('object_id', 'text')
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('received_at', time, (c) => c.notNull())
          .addColumn('processed_at', time)
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('last_error', 'text')
          .addColumn('available_at', time, (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('webhook_events_unprocessed_idx')
          .on('webhook_events')
          .columns(['available_at', 'received_at'])
          .where(sql.ref('processed_at'), 'is', null)
          .execute();
        await db.schema
          .createIndex('webhook_events_object_idx')
          .on('webhook_events')
          .column('object_id')
          .execute();

        await db.schema
          .createTable('api_keys')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('owner', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind in ('secret', 'publishable')`))
          .addColumn('prefix', 'text', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull().unique())
          .addColumn('scopes', 'text', (c) => c.notNull().defaultTo('[]'))
          .addColumn('created_at', time, (c) => c.notNull())
          .addColumn('revoked_at', time)
          .addColumn('last_used_at', time)
          .execute();
        await db.schema.createIndex('api_keys_owner_idx').on('api_keys').column('owner').execute();

        await db.schema
          .createTable('idempotency_keys')
          .addColumn('owner', 'text', (c) => c.notNull())
          .addColumn('key', 'text', (c) => c.notNull())
          .addColumn('request_hash', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull().check(sql`state in ('in_progress', 'done')`))
          .addColumn('response_status', 'integer')
          .addColumn('response_body', 'text')
          .addColumn('created_at', time, (c) => c.notNull())
          .addColumn('expires_at', time, (c) => c.notNull())
          .addPrimaryKeyConstraint('idempotency_keys_pkey', ['owner', 'key'])
          .execute();
        await db.schema
          .createIndex('idempotency_keys_expires_idx')
          .on('idempotency_keys')
          .column('expires_at')
          .execute();
      },
      async down(db: AnyDb) {
        for (const table of [
          'idempotency_keys',
          'api_keys',
          'webhook_events',
          'outbox',
          'refunds',
          'payments',
        ]) {
          await db.schema.dropTable(table).ifExists().execute();
        }
      },
    },
    '0002_refunds_reserved_covering_idx': {
      // Every refund acceptance sums what is already reserved on its payment intent; with the amount and
      // status in the index that sum reads only the index, not one table row per earlier refund.
      indexes: {
        build: [
          (db) =>
            db.schema
              .createIndex('refunds_pi_status_amount_idx')
              .on('refunds')
              .columns(['payment_intent_id', 'status', 'amount']),
        ],
        // The new index starts with payment_intent_id, so it serves every lookup the old one did.
        drop: ['refunds_payment_intent_id_idx'],
      },
      async down(db: AnyDb) {
        await db.schema
          .createIndex('refunds_payment_intent_id_idx')
          .on('refunds')
          .column('payment_intent_id')
          .execute();
        await db.schema.dropIndex('refunds_pi_status_amount_idx').execute();
      },
    },
    '0003_drop_unused_owner_idx': {
      // Every owner check goes through the primary key (id or request_id, then owner): these indexes were
      // never read, only written on every insert.
      indexes: { drop: ['refunds_owner_idx', 'payments_owner_idx'] },
      async down(db: AnyDb) {
        await db.schema.createIndex('refunds_owner_idx').on('refunds').column('owner').execute();
        await db.schema.createIndex('payments_owner_idx').on('payments').column('owner').execute();
      },
    },
    '0004_outbox_unsent_idx': {
      // The relay claims the oldest unsent rows by id. outbox_pending_idx (available_at, id) cannot give
      // that order, so both SQLite and PostgreSQL walked the primary key past every sent row (kept for
      // 7 days) on each claim. Unsent rows in id order make the claim read only what is waiting.
      indexes: {
        build: [
          (db) =>
            db.schema
              .createIndex('outbox_unsent_idx')
              .on('outbox')
              .column('id')
              .where(sql.ref('sent_at'), 'is', null),
        ],
        drop: ['outbox_pending_idx'],
      },
      async down(db: AnyDb) {
        await db.schema
          .createIndex('outbox_pending_idx')
          .on('outbox')
          .columns(['available_at', 'id'])
          .where(sql.ref('sent_at'), 'is', null)
          .execute();
        await db.schema.dropIndex('outbox_unsent_idx').execute();
      },
    },
    '0005_pg_refunds_committed_fn': {
      // PostgreSQL only. What a payment's refunds hold (RefundsRepo.sumCommitted's rule: every refund not
      // failed or canceled), as a function the refund guard calls in the statement that locks the payment
      // row, after the lock is granted: one round trip instead of two. VOLATILE and PL/pgSQL on purpose: a
      // volatile function's query takes a fresh snapshot, so it sees every refund committed while the
      // caller waited for the lock, and PL/pgSQL is never inlined into the calling statement (whose snapshot
      // is older). A test compares it with sumCommitted for every status.
      async up(db: AnyDb) {
        if (!pg) return;
        await sql`
          create function refunds_committed(pi text) returns bigint
          language plpgsql volatile
          as $fn$
          begin
            return (
              select coalesce(sum(amount), 0)::bigint from refunds
              where payment_intent_id = pi and status not in ('failed', 'canceled')
            );
          end
          $fn$`.execute(db);
      },
      async down(db: AnyDb) {
        if (!pg) return;
        await sql`drop function if exists refunds_committed(text)`.execute(db);
      },
    },
    '0006_forget_customer_emails': {
      // Checkout sessions' rows kept the customer's e-mail address, which nothing ever read (GET
      // /checkout-session asks Stripe): personal data kept for no use. The service no longer writes it; this
      // forgets what earlier versions wrote. The column stays, so a process of an earlier version running
      // beside this one during a rolling update still works (it may write a few more, until it is replaced).
      async up(db: AnyDb) {
        await db
          .updateTable('payments')
          .set({ customer_email: null })
          .where('customer_email', 'is not', null)
          .execute();
      },
      async down() {
        // What was forgotten cannot come back.
      },
    },
    '0007_webhook_events_applied_idx': {
      // Housekeeping deletes the events applied more than 30 days ago. The only index on processed_at was for
      // events not applied yet, so every hourly run read the whole table (30 days of events) to find the few
      // due, and on SQLite that read holds the event loop: 0.5 s at 1,000,000 events, for nothing deleted.
      indexes: {
        build: [
          (db) =>
            db.schema
              .createIndex('webhook_events_applied_idx')
              .on('webhook_events')
              .column('processed_at')
              .where('processed_at', 'is not', null),
        ],
      },
      async down(db: AnyDb) {
        await db.schema.dropIndex('webhook_events_applied_idx').execute();
      },
    },
    '0008_payments_customer_email_idx': {
      // Housekeeping clears the e-mail addresses a process of a version before 0006 writes; it looked for them
      // among a week of payments (by created_at), read row by row every hour. Only those rows are in this index,
      // and the service writes none, so it stays empty and costs inserts nothing.
      indexes: {
        build: [
          (db) =>
            db.schema
              .createIndex('payments_customer_email_idx')
              .on('payments')
              .column('created_at')
              .where(sql.ref('customer_email'), 'is not', null),
        ],
      },
      async down(db: AnyDb) {
        await db.schema.dropIndex('payments_customer_email_idx').execute();
      },
    },
    '0009_refunds_in_flight_idx': {
      // The stuck-refund sweep pages through the refunds queued or processing, oldest-updated first. The status
      // index holds them by status, then time: for two statuses neither database can read that order from it, so
      // every page read and sorted every refund in flight (on SQLite, on the event loop: 0.2-0.4 s a page at
      // 100,000). Only those refunds are in this index, in the sweep's order; a refund leaves it when it moves on.
      // Its predicate is the very one of the sweep's statement (see listByStatusQuery): SQLite uses a partial index
      // only for a statement whose WHERE says what the index's does. On SQLite, `+status`: without statistics
      // (SQLite has none unless ANALYZE ran) it guesses the status index finds few rows and picks it; the unary
      // plus keeps that index out of the sweep's statement, and with it the sort of every refund in flight.
      indexes: {
        build: [
          (db) =>
            db.schema
              .createIndex('refunds_in_flight_idx')
              .on('refunds')
              .columns(['updated_at', 'request_id'])
              .where(pg ? sql.ref('status') : sql`+status`, 'in', [sql.lit('queued'), sql.lit('processing')]),
        ],
      },
      async down(db: AnyDb) {
        await db.schema.dropIndex('refunds_in_flight_idx').execute();
      },
    },
    '0010_idempotency_claim_token': {
      // An Idempotency-Key's claim was known by its created_at alone, so the late last write (abandon or complete,
      // retried in the background through an outage) of a request whose key was claimed again in the same
      // millisecond acted on the new claim. Each claim now also writes a random token, which those writes match
      // too. Nullable, no default: on PostgreSQL adding it rewrites nothing (a brief ACCESS EXCLUSIVE lock under
      // MIGRATION_LOCK_TIMEOUT_MS); a process of an earlier version neither reads nor writes it (its statements
      // name their columns), and its claims have none.
      // IF NOT EXISTS on PostgreSQL, as 0011: a ledger set back to before this migration by hand (its bookkeeping
      // row deleted, as README's rollback step does) keeps the column, and the next start runs it again.
      async up(db: AnyDb) {
        if (pg) await sql`alter table idempotency_keys add column if not exists claim_token text`.execute(db);
        else await db.schema.alterTable('idempotency_keys').addColumn('claim_token', 'text').execute();
      },
      async down(db: AnyDb) {
        await db.schema.alterTable('idempotency_keys').dropColumn('claim_token').execute();
      },
    },
    '0011_refunds_http_request_id': {
      // The id of the HTTP request that asked for a refund (its X-Request-Id), kept so that the outcome a webhook
      // settles later carries it in its x-request-id header like the ones the request and the worker publish.
      // Nullable, no default: on PostgreSQL a change of the catalogue only, and a row a process of an earlier
      // version writes during a rolling update has none (its webhook outcomes go without, as before).
      // IF NOT EXISTS on PostgreSQL: a ledger set back to before this migration by hand (its bookkeeping row
      // deleted, as the migration tests do) keeps the column.
      async up(db: AnyDb) {
        if (pg) await sql`alter table refunds add column if not exists http_request_id text`.execute(db);
        else await db.schema.alterTable('refunds').addColumn('http_request_id', 'text').execute();
      },
      async down(db: AnyDb) {
        await db.schema.alterTable('refunds').dropColumn('http_request_id').execute();
      },
    },
  };
}

/** Kysely's bookkeeping table: the migrations applied to the database, by name. */
export const MIGRATION_TABLE = 'kysely_migration';

/**
 * PostgreSQL: how long a migration's statement waits for a table or row lock before its migration is rolled back
 * and tried again. While a DDL statement waits for its lock, every later statement on that table queues behind
 * it, and the migration holds the locks its earlier statements took: without a bound, one long transaction
 * (a report, a stuck session) stalls every request on those tables for as long as it lasts. Kept well below
 * DATABASE_TIMEOUT_MS (10 s), so a request held up by it still answers. Not for the index steps (see
 * runIndexSteps), whose waits hold up no request.
 */
const MIGRATION_LOCK_TIMEOUT_MS = 2_000;
/** How long a start keeps retrying a migration that cannot get its locks before it gives up (exit 1). */
const MIGRATION_LOCK_RETRY_FOR_MS = 5 * 60_000;
/** PostgreSQL's lock_not_available (lock_timeout ran out). */
const PG_LOCK_NOT_AVAILABLE = '55P03';
/** PostgreSQL's deadlock_detected. */
const PG_DEADLOCK_DETECTED = '40P01';
/**
 * PostgreSQL: the advisory lock processes take turns with, Kysely's own (its PostgresAdapter), so a process of a
 * version that migrated through Kysely's migrator and one of this version never migrate at the same time.
 */
const MIGRATION_ADVISORY_LOCK = '3853314791062309107';
/** How long a start waits for the advisory lock another process holds before it gives up (Kysely's bound). */
const MIGRATION_ADVISORY_LOCK_WAIT_MS = 60 * 60_000;

/**
 * Brings the schema to the latest migration. Safe to run from several processes at once: on PostgreSQL they take
 * turns through a session-level advisory lock (see migratePostgres), and on SQLite the migration transaction is
 * BEGIN IMMEDIATE.
 *
 * Built for rolling updates, where processes of two versions share one database:
 * - Each migration runs in a transaction of its own, so the locks one takes are held for that migration only, not
 *   until the last of a batch has run: a process catching up several migrations on a large ledger would otherwise
 *   stall every request on the tables the first one touched until the last was done.
 * - On PostgreSQL a migration's index steps (StoreMigration.indexes) run CONCURRENTLY before its transaction, and
 *   take no lock that stops reads or writes of their table; a migration that waits longer than
 *   MIGRATION_LOCK_TIMEOUT_MS for a lock in its transaction gives way (rolled back, its locks released) and is
 *   tried again a little later.
 * - A database a newer version has migrated further is used as it is (with a warning) when every migration of
 *   this version is among those applied: migrations only add or change what earlier versions keep working with,
 *   so a process of the earlier version that restarts during the update, or a rollback, still starts. Kysely
 *   alone refuses to run beside a migration it does not know ("corrupted migrations").
 */
export async function migrateToLatest(
  db: AnyDb,
  opts: { dialect: Dialect; schema?: string; logger: Logger },
): Promise<string[]> {
  const known = Object.keys(storeMigrations(opts.dialect)).sort();
  // Nothing to do: no lock taken, no look for the bookkeeping tables.
  if (nextMigration(known, await appliedMigrationNames(db, opts.schema), opts.logger) === undefined)
    return [];
  return opts.dialect === 'postgres' ? migratePostgres(db, opts) : migrateSqlite(db, known, opts);
}

/**
 * The first migration of `known` not among `executed`, or none when there is nothing left for this version to
 * do (with a warning when a newer version has migrated further). Throws when a newer version has migrated but
 * one of this version's migrations is missing.
 */
function nextMigration(known: string[], executed: string[], logger: Logger): string | undefined {
  const newer = executed.filter((name) => !known.includes(name));
  const missing = known.filter((name) => !executed.includes(name));
  if (newer.length > 0) {
    if (missing.length > 0) {
      throw new Error(
        `the database has migrations this version does not know (${newer.join(', ')}) but lacks ${missing.join(', ')}`,
      );
    }
    logger.warn(
      { newerMigrations: newer },
      'store schema is newer than this version (a rolling update or a rollback): running with it',
    );
    return undefined;
  }
  return missing[0];
}

/** SQLite: Kysely's migrator, one migration a turn (each in its BEGIN IMMEDIATE transaction). */
async function migrateSqlite(
  db: AnyDb,
  known: string[],
  opts: { dialect: Dialect; schema?: string; logger: Logger },
): Promise<string[]> {
  const migrations = buildMigrations(opts.dialect);
  const provider: MigrationProvider = { getMigrations: async () => migrations };
  const migrator = new Migrator({ db, provider });
  const applied: string[] = [];
  // Each turn applies one migration, or finds nothing left to do. A newer version's process migrating between
  // this one's look at the bookkeeping and its migrator's (which then reports a missing migration) costs a turn.
  for (let races = 0; races <= 3;) {
    if (nextMigration(known, await appliedMigrationNames(db, opts.schema), opts.logger) === undefined) {
      return applied;
    }
    const { error, results } = await migrator.migrateUp();
    for (const r of results ?? []) {
      if (r.status === 'Success') {
        opts.logger.info({ migration: r.migrationName }, 'store migration applied');
        applied.push(r.migrationName);
      }
    }
    if (error) {
      if (error instanceof Error && /previously executed migration .* is missing/.test(error.message)) {
        races += 1;
        continue;
      }
      const failed = results?.find((r) => r.status === 'Error')?.migrationName;
      // Not logged here: whoever opened the store says it failed, with this error (the process's fatal
      // 'could not start' line); a line of its own made one failure two.
      throw new Error(`store migration ${failed ?? '(unknown)'} failed`, { cause: error });
    }
    if (!results?.some((r) => r.status === 'Success')) return applied;
  }
  throw new Error('store migrations did not settle (the database kept changing under them)');
}

/** A migration that failed, with why. */
class MigrationFailed extends Error {
  constructor(
    readonly migration: string,
    cause: unknown,
  ) {
    super(`store migration ${migration} failed`, { cause });
  }
}

/**
 * PostgreSQL: the service's own runner (Kysely's migrator runs a migration only whole inside one transaction,
 * where CREATE INDEX CONCURRENTLY cannot run). It keeps Kysely's bookkeeping tables and advisory lock, so versions
 * that migrated through Kysely's migrator read and take turns with it. Each turn, on one connection:
 * 1. takes the advisory lock, session-level, on that connection (pg_try_advisory_lock, again every few hundred ms
 *    until it is free). Session-level, because a CONCURRENTLY statement cannot run inside a transaction and waits
 *    for every transaction older than it to end: a lock held by an open transaction, on this connection or any other
 *    of this process, would be waited for by the very build it guards, for ever. Tried rather than waited for: a
 *    process waiting inside `select pg_advisory_lock()` holds a snapshot, and the build of the process holding the
 *    lock would wait for it, in a deadlock;
 * 2. reads the bookkeeping under the lock and picks the next migration (none: done), so of two processes starting
 *    together each migration is run by one, and the other finds it applied;
 * 3. runs its index steps, each in no transaction (runIndexSteps); on a new database, whose tables this very start
 *    made, plainly at the start of step 4's transaction instead;
 * 4. runs its `up` and writes its bookkeeping row in one transaction (lock_timeout MIGRATION_LOCK_TIMEOUT_MS), so it
 *    is recorded as applied only once its indexes are valid;
 * 5. lets go of the lock.
 * A turn that waited too long for a lock in step 4 (or lost a deadlock, say with a process of a version before this
 * runner waiting for the lock) is tried again a little later; anything else fails the start.
 */
async function migratePostgres(db: AnyDb, opts: { schema?: string; logger: Logger }): Promise<string[]> {
  const migrations = storeMigrations('postgres');
  const known = Object.keys(migrations).sort();
  const applied: string[] = [];
  const giveUpAt = Date.now() + MIGRATION_LOCK_RETRY_FOR_MS;
  for (;;) {
    let name: string | undefined;
    try {
      name = await db.connection().execute((conn) =>
        withMigrationLock(conn, async () => {
          await ensureBookkeeping(conn, opts.schema);
          const executed = await appliedMigrationNames(conn, opts.schema);
          const next = nextMigration(known, executed, opts.logger);
          if (next === undefined) return undefined;
          // Kysely's migrator refuses a database whose applied migrations are not the first ones; so does this one
          // (a migration describes the schema as those before it left it).
          const gap = known.slice(0, known.indexOf(next)).find((n) => !executed.includes(n));
          if (gap !== undefined || executed.some((n) => n > next)) {
            throw new Error(`corrupted migrations: ${next} is not applied, but migrations after it are`);
          }
          try {
            // The tables were made by this very start (0001 creates them, and fails if they are there): no request
            // reads or writes them yet, and a concurrent build would only wait for every transaction of the database
            // for nothing, so a new database gets its indexes plainly, in each migration's transaction.
            const newTables = applied.includes(known[0]!);
            await runMigration(conn, next, migrations[next]!, { ...opts, concurrently: !newTables });
          } catch (error) {
            throw new MigrationFailed(next, error);
          }
          return next;
        }),
      );
    } catch (error) {
      const cause = error instanceof MigrationFailed ? error.cause : error;
      const code = (cause as { code?: unknown }).code;
      if ((code === PG_LOCK_NOT_AVAILABLE || code === PG_DEADLOCK_DETECTED) && Date.now() < giveUpAt) {
        opts.logger.warn(
          {
            migration: error instanceof MigrationFailed ? error.migration : undefined,
            code,
            lockTimeoutMs: MIGRATION_LOCK_TIMEOUT_MS,
          },
          'store migration waited too long for a lock; rolled back to let requests through, trying again',
        );
        await sleep(500 + Math.random() * 1_000);
        continue;
      }
      // Not logged here: whoever opened the store says it failed, with this error (the process's fatal
      // 'could not start' line); a line of its own made one failure two.
      throw error;
    }
    if (name === undefined) return applied;
    opts.logger.info({ migration: name }, 'store migration applied');
    applied.push(name);
  }
}

/** Runs `fn` holding the migration advisory lock, session-level, on connection `conn` (see migratePostgres). */
async function withMigrationLock<T>(conn: AnyDb, fn: () => Promise<T>): Promise<T> {
  const waitUntil = Date.now() + MIGRATION_ADVISORY_LOCK_WAIT_MS;
  for (;;) {
    const { rows } = await sql<{ locked: boolean }>`
      select pg_try_advisory_lock(${sql.raw(MIGRATION_ADVISORY_LOCK)}) as locked`.execute(conn);
    if (rows[0]?.locked) break;
    if (Date.now() > waitUntil) {
      throw new Error('another process has been migrating the store for an hour (its advisory lock is held)');
    }
    await sleep(100 + Math.random() * 200);
  }
  try {
    return await fn();
  } finally {
    // A connection that broke meanwhile took the lock with it (the session is gone); the turn's own error says why.
    await sql`select pg_advisory_unlock(${sql.raw(MIGRATION_ADVISORY_LOCK)})`
      .execute(conn)
      .catch(() => undefined);
  }
}

/**
 * Kysely's bookkeeping tables, as its migrator makes them (versions that migrated through it, and an earlier
 * version started on this database, find what they expect). Under the advisory lock; IF NOT EXISTS can still lose a
 * race with a process of such a version creating them outside it, which then made them.
 */
async function ensureBookkeeping(conn: AnyDb, schema: string | undefined): Promise<void> {
  const ddl = schema ? conn.schema.withSchema(schema) : conn.schema;
  const tolerate = async (create: () => Promise<unknown>, table: string) => {
    try {
      await create();
    } catch (error) {
      // A check that cannot run (the refusal closed the connection: a read-only database's first write) leaves
      // the refusal to say why, not "Client was closed".
      const rows = await sql<{ found: string | null }>`
        select to_regclass(${schema ? `"${schema}"."${table}"` : `"${table}"`})::text as found`
        .execute(conn)
        .then(
          (r) => r.rows,
          () => [],
        );
      if (!rows[0]?.found) throw error;
    }
  };
  await tolerate(
    () =>
      ddl
        .createTable(MIGRATION_TABLE)
        .ifNotExists()
        .addColumn('name', 'varchar(255)', (col) => col.notNull().primaryKey())
        .addColumn('timestamp', 'varchar(255)', (col) => col.notNull())
        .execute(),
    MIGRATION_TABLE,
  );
  await tolerate(
    () =>
      ddl
        .createTable(DEFAULT_MIGRATION_LOCK_TABLE)
        .ifNotExists()
        .addColumn('id', 'varchar(255)', (col) => col.notNull().primaryKey())
        .addColumn('is_locked', 'integer', (col) => col.notNull().defaultTo(0))
        .execute(),
    DEFAULT_MIGRATION_LOCK_TABLE,
  );
  await (schema ? conn.withSchema(schema) : conn)
    .insertInto(DEFAULT_MIGRATION_LOCK_TABLE)
    .values({ id: MIGRATION_LOCK_ID, is_locked: 0 })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
}

/** Steps 3 and 4 of migratePostgres for migration `name`. */
async function runMigration(
  conn: AnyDb,
  name: string,
  migration: StoreMigration,
  opts: { schema?: string; logger: Logger; concurrently: boolean },
): Promise<void> {
  const { indexes } = migration;
  if (indexes && opts.concurrently) await runIndexSteps(conn, name, indexes, opts.logger);
  await conn.transaction().execute(async (tx) => {
    // SET LOCAL: for this migration's transaction only.
    await sql`set local lock_timeout = ${sql.lit(MIGRATION_LOCK_TIMEOUT_MS)}`.execute(tx);
    if (indexes && !opts.concurrently) {
      for (const build of indexes.build ?? []) await build(tx).execute();
      for (const index of indexes.drop ?? []) await tx.schema.dropIndex(index).execute();
    }
    await migration.up?.(tx);
    await (opts.schema ? tx.withSchema(opts.schema) : tx)
      .insertInto(MIGRATION_TABLE)
      .values({ name, timestamp: new Date().toISOString() })
      .execute();
  });
}

/**
 * PostgreSQL: a migration's index steps, each a statement of its own outside any transaction (CONCURRENTLY cannot
 * run inside one), on the connection that holds the advisory lock:
 * - each index to build: none of that name, built CONCURRENTLY; a valid one, left as it is (a run that died after
 *   building it); an INVALID one (pg_index.indisvalid: what a CONCURRENTLY build leaves when it fails or its process
 *   dies mid-way, and which PostgreSQL keeps updating on every write but never reads), dropped CONCURRENTLY and built
 *   again. Checked valid after the build;
 * - then each index to drop, DROP INDEX CONCURRENTLY IF EXISTS.
 * Neither takes a lock that stops reads or writes of the table (SHARE UPDATE EXCLUSIVE, which only VACUUM, ANALYZE,
 * other such builds and some ALTER TABLEs wait for), but each waits for every transaction that writes the table, and
 * a build also for every transaction in the database older than it, to end. Those waits hold up no request, so
 * they have no lock_timeout: a start waits for a long transaction (a report, another application's idle session)
 * rather than give up with an INVALID index behind it.
 */
async function runIndexSteps(
  conn: AnyDb,
  migration: string,
  steps: IndexSteps,
  logger: Logger,
): Promise<void> {
  await sql`set lock_timeout = 0`.execute(conn);
  // Drops name the schema: IF EXISTS must not find an index of that name further down the search_path.
  const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(conn);
  const schema = rows[0]!.schema;
  for (const build of steps.build ?? []) {
    const builder = build(conn);
    const index = builder.toOperationNode().name.name;
    const compiled = builder.compile();
    const concurrently = compiled.sql.replace(/^create (unique )?index /, 'create $1index concurrently ');
    if (concurrently === compiled.sql || compiled.parameters.length > 0) {
      throw new Error(`index ${index}: cannot build it concurrently (${compiled.sql})`);
    }
    const state = await indexState(conn, index);
    if (state === 'valid') continue;
    if (state === 'invalid') {
      logger.warn({ migration, index }, 'store migration dropping an invalid index an earlier build left');
      await sql`drop index concurrently if exists ${sql.id(schema, index)}`.execute(conn);
    }
    logger.info({ migration, index }, 'store migration building an index concurrently');
    await sql.raw(concurrently).execute(conn);
    if ((await indexState(conn, index)) !== 'valid')
      throw new Error(`index ${index} is not valid after its build`);
  }
  for (const index of steps.drop ?? []) {
    await sql`drop index concurrently if exists ${sql.id(schema, index)}`.execute(conn);
  }
}

/** Whether index `name` of the connection's schema is there, and valid (pg_index.indisvalid). */
async function indexState(conn: AnyDb, name: string): Promise<'missing' | 'valid' | 'invalid'> {
  const { rows } = await sql<{ valid: boolean }>`
    select i.indisvalid as valid
    from pg_catalog.pg_index i
    join pg_catalog.pg_class c on c.oid = i.indexrelid
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    where n.nspname = current_schema() and c.relname = ${name}`.execute(conn);
  if (rows.length === 0) return 'missing';
  return rows[0]!.valid ? 'valid' : 'invalid';
}

/** Names in Kysely's bookkeeping table; none before it exists (a new database). */
export async function appliedMigrationNames(db: AnyDb, schema: string | undefined): Promise<string[]> {
  const table = schema ? db.withSchema(schema) : db;
  try {
    const rows = await table.selectFrom(MIGRATION_TABLE).select('name').execute();
    return rows.map((r: { name: string }) => r.name);
  } catch (error) {
    // 42P01: undefined_table (PostgreSQL); SQLite says "no such table".
    const code = (error as { code?: unknown }).code;
    const message = error instanceof Error ? error.message : '';
    if (code === '42P01' || /no such table/i.test(message)) return [];
    throw error;
  }
}

/**
 * PostgreSQL: the dialect for running migrations, whose introspection (what Kysely's migrator uses to find its
 * bookkeeping tables) lists the tables of the schema being migrated only (the connection's current schema).
 * Kysely's own lists every schema's tables, calling has_schema_privilege() on each schema's name: a schema another
 * client drops while that query runs fails it with `schema "…" does not exist`, and with it this process's start
 * (seen in CI, where test files drop their schemas while others start; any database shared with other
 * applications can do the same).
 */
export function withOwnSchemaIntrospection(dialect: KyselyDialect): KyselyDialect {
  return {
    createDriver: () => dialect.createDriver(),
    createQueryCompiler: () => dialect.createQueryCompiler(),
    createAdapter: () => dialect.createAdapter(),
    createIntrospector: (db) => ownSchemaIntrospector(dialect.createIntrospector(db), db),
  };
}

function ownSchemaIntrospector(kysely: DatabaseIntrospector, db: AnyDb): DatabaseIntrospector {
  const getTables = async (): Promise<TableMetadata[]> => {
    const { rows } = await sql<{ name: string; schema: string; kind: string }>`
      select c.relname as name, n.nspname as schema, c.relkind as kind
      from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
      where n.nspname = current_schema() and c.relkind in ('r', 'v', 'p')`.execute(db);
    return rows.map((r) => ({ name: r.name, schema: r.schema, isView: r.kind === 'v', columns: [] }));
  };
  return {
    getSchemas: () => kysely.getSchemas(),
    getTables,
    getMetadata: async () => ({ tables: await getTables() }),
  };
}
