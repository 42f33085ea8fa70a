import { setTimeout as sleep } from 'node:timers/promises';
import { Kysely, sql } from 'kysely';
import type { Dialect as KyselyDialect } from 'kysely';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { parseDatabaseUrl, redactDatabaseUrl } from './database-url.js';
import type { Database } from './database.js';
import {
  DuplicateKeyError,
  LedgerSchemaError,
  NoLedgerError,
  StoreUnavailableError,
  isRetryableError,
} from './errors.js';
import {
  appliedMigrationNames,
  migrateToLatest,
  storeMigrations,
  withOwnSchemaIntrospection,
} from './migrations.js';
import type { Dialect } from './migrations.js';
import { createRepos } from './repos.js';
import type { Repos } from './repos.js';
import { createSqliteDialect, requireSqliteLedger } from './sqlite.js';
import { ImmediateSqliteDialect } from './sqlite-dialect.js';
import { executeTemplatesWith } from './query-template.js';

export interface StoreOptions {
  /** `sqlite:<path>`, `sqlite::memory:`, `postgres://...` or `postgresql://...`. */
  url: string;
  /** PostgreSQL only: schema to use (created if missing); every pooled connection gets it as search_path. */
  schema?: string;
  /**
   * PostgreSQL pool size for requests and the refund worker. Default 10. The store-level outbox and inbox
   * repositories run on a pool of their own besides (BACKGROUND_POOL_SIZE connections).
   */
  poolSize?: number;
  /** SQLite only. Default FULL: an accepted refund must survive a crash. */
  sqliteSynchronous?: 'FULL' | 'NORMAL';
  logger?: Logger;
  /** SQLite only: how long to wait for another connection's write lock. Default 5000. */
  sqliteBusyTimeoutMs?: number;
  /** PostgreSQL only: how long to wait for a new connection. Default 10000. */
  connectTimeoutMs?: number;
  /**
   * PostgreSQL only: how long a statement may go unanswered before it fails with StoreUnavailableError and
   * its connection is closed. Default 10000. Migrations run on a connection of their own without it.
   */
  queryTimeoutMs?: number;
  /** How many times transaction() runs `fn` on serialization/deadlock/busy failures. Default 4. */
  transactionAttempts?: number;
  /**
   * Opens a ledger that is there already, for tools that only read one (reconcile): a database without the
   * service's tables (a new one, another application's) is refused with NoLedgerError, and nothing is created in it
   * (on PostgreSQL not even the schema; on SQLite not the file, nor its folder, and a file there keeps its bytes and
   * journal mode). Nor is it migrated: a ledger whose schema is older or newer than this version's (the service of
   * another version runs on it) is refused with LedgerSchemaError, unchanged. Default false: the service brings a
   * new database, or an older one, up to date.
   */
  existingOnly?: boolean;
}

/**
 * Store-level `outbox` and `inbox` calls are background work (the outbox relay and its lease renewals, the webhook
 * retry sweep and what it records, housekeeping's purges, the backlog gauges); on PostgreSQL they run on a pool of
 * their own, so that requests holding every connection of the main pool (a lock waited on, a slow statement, a
 * burst) do not stop the refunds already accepted from being published. So do the other calls only background
 * work makes: `refunds.listByStatus` (the stuck-refund sweep's read), `idempotency.purgeExpired` and
 * `payments.forgetCustomerEmails` (housekeeping). In a transaction, every repository is the transaction's.
 */
export interface Store extends Repos {
  readonly dialect: Dialect;
  /**
   * Runs `fn` in one transaction (BEGIN IMMEDIATE on SQLite) with repositories bound to it, and
   * runs it again on a serialization failure, deadlock or busy database; so `fn` must not have
   * effects outside the database. Inside `fn` use only `tx`, never the store's own repositories:
   * on SQLite they wait for the one connection `fn` holds, and on PostgreSQL they may wait for
   * `fn`'s own locks. PostgreSQL runs at READ COMMITTED: guard a read-check-write with
   * `tx.payments.lockForUpdate`, as the refund service does.
   */
  transaction<T>(fn: (tx: Repos) => Promise<T>): Promise<T>;
  /**
   * Resolves when the database answers and takes writes; for readiness probes. On PostgreSQL a server in recovery
   * (a hot standby, say the old primary after a failover) or a session that is read-only
   * (`default_transaction_read_only` set for the server, database or role) rejects with StoreUnavailableError saying
   * so: it answers every read while each accepted refund, payment or webhook fails.
   */
  ping(): Promise<void>;
  /**
   * How far the database's clock is ahead of this process's, in ms (negative: behind), read over the background
   * pool and taken at the middle of the round trip. 0 on SQLite, whose clock is this machine's.
   */
  clockOffsetMs(): Promise<number>;
  /** Closes the connection or pool. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_POOL_SIZE = 10;
/**
 * PostgreSQL connections of the background pool (see Store), besides poolSize: the relay's loop and its lease
 * renewals each have one; housekeeping (one purge at a time) and the stuck-refund sweep's read take one in turn.
 */
export const BACKGROUND_POOL_SIZE = 2;
const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_QUERY_TIMEOUT_MS = 10_000;
/**
 * PostgreSQL 14+: how often the server checks that the client migrating is still there (client_connection_check_interval,
 * on the migration connection only), so a start killed mid-build frees the migration lock within seconds.
 */
const MIGRATION_CLIENT_CHECK_MS = 2_000;
const DEFAULT_TRANSACTION_ATTEMPTS = 4;

/** Opens the database named by `opts.url` and (unless `existingOnly`) brings its schema up to date before resolving. */
export async function createStore(opts: StoreOptions): Promise<Store> {
  const logger = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'store' });
  const target = parseDatabaseUrl(opts.url);
  const dialect: Dialect = target.dialect;
  let kyselyDialect: KyselyDialect;
  /** PostgreSQL: the dialect of the background pool (see Store). */
  let backgroundDialect: KyselyDialect | undefined;
  /** PostgreSQL: the dialect migrations run on (one connection, no query timeout), closed once they are done. */
  let migrationDialect: KyselyDialect | undefined;
  let migrationSchema: string | undefined;

  if (target.dialect === 'sqlite') {
    if (opts.schema !== undefined) throw new Error('the schema option is for PostgreSQL only');
    const busyTimeoutMs = opts.sqliteBusyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    // Before the open below, which would create the file or switch it to WAL mode.
    if (opts.existingOnly)
      requireSchemaOfThisVersion(dialect, await requireSqliteLedger(target.path, busyTimeoutMs));
    kyselyDialect = await createSqliteDialect({
      path: target.path,
      synchronous: opts.sqliteSynchronous ?? 'FULL',
      busyTimeoutMs,
      logger,
    });
    logger.info({ dialect, path: target.path }, 'store opening SQLite');
  } else {
    // Loaded only when used: a SQLite deployment never pays for the pg driver at start.
    const { createPostgresDialect } = await import('./postgres.js');
    const common = {
      connectionString: target.connectionString,
      ...(opts.schema !== undefined && { schema: opts.schema }),
      connectTimeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      logger,
    };
    const queryTimeoutMs = opts.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
    ({ dialect: kyselyDialect } = createPostgresDialect({
      ...common,
      poolSize: opts.poolSize ?? DEFAULT_POOL_SIZE,
      queryTimeoutMs,
    }));
    ({ dialect: backgroundDialect } = createPostgresDialect({
      ...common,
      poolSize: BACKGROUND_POOL_SIZE,
      queryTimeoutMs,
    }));
    // Kysely waits up to an hour for another process's migration lock, and a migration may rightly take long:
    // neither is an unanswered statement, so migrations get a connection without the timeouts. A process killed
    // meanwhile (an index build CONCURRENTLY that waits for a long transaction, or reads a large table) leaves no
    // build behind holding the migration lock for the next start: the server checks the client every
    // MIGRATION_CLIENT_CHECK_MS and ends the session once it is gone.
    ({ dialect: migrationDialect } = createPostgresDialect({
      ...common,
      poolSize: 1,
      clientCheckIntervalMs: MIGRATION_CLIENT_CHECK_MS,
    }));
    logger.info(
      { dialect, url: redactDatabaseUrl(target.connectionString), schema: opts.schema },
      'store opening PostgreSQL',
    );
  }

  const db = new Kysely<Database>({ dialect: kyselyDialect });
  const backgroundDb = backgroundDialect ? new Kysely<Database>({ dialect: backgroundDialect }) : db;
  /** Closes both pools (one on SQLite). */
  const destroy = () =>
    Promise.all([db.destroy(), backgroundDb !== db ? backgroundDb.destroy() : undefined]).then(
      () => undefined,
    );
  // SQLite: every transaction runs as a unit of the driver's group commit, through one Kysely handle and one
  // set of repositories bound to whichever unit is open (SQLite has one connection; a unit holds it to the end).
  let sqliteUnits: {
    run: <T>(fn: (db: Kysely<Database>) => Promise<T>) => Promise<T>;
    repos: Repos;
  } | null = null;
  if (kyselyDialect instanceof ImmediateSqliteDialect) {
    const sqlite = kyselyDialect;
    const unitDb = new Kysely<Database>({ dialect: sqlite.unitDialect() });
    // Neither handle has plugins, so the dialect's own execute paths are what Kysely's executor would do.
    executeTemplatesWith(db, (q) => sqlite.executeAlone(q));
    executeTemplatesWith(unitDb, (q) => sqlite.executeInUnit(q));
    sqliteUnits = {
      run: (fn) => sqlite.runUnit(() => fn(unitDb)),
      repos: createRepos({ db: unitDb, dialect, inTransaction: true }),
    };
  }
  const migrationDb = migrationDialect
    ? new Kysely<Database>({ dialect: withOwnSchemaIntrospection(migrationDialect) })
    : db;
  try {
    if (dialect === 'postgres') {
      migrationSchema = await preparePostgresSchema(migrationDb, opts.schema, opts.existingOnly === true);
    }
    if (opts.existingOnly) {
      // SQLite was checked before its open; PostgreSQL here, before any statement that could change it.
      if (dialect === 'postgres') {
        const applied = await appliedMigrationNames(migrationDb, migrationSchema);
        if (applied.length === 0) {
          throw new NoLedgerError(
            migrationSchema === undefined
              ? "the database has none of the service's tables"
              : `schema "${migrationSchema}" of the database has none of the service's tables`,
          );
        }
        requireSchemaOfThisVersion(dialect, applied);
      }
    } else {
      await migrateToLatest(migrationDb, {
        dialect,
        logger,
        ...(migrationSchema !== undefined && { schema: migrationSchema }),
      });
    }
  } catch (error) {
    await destroy().catch(() => undefined);
    throw error;
  } finally {
    if (migrationDb !== db) await migrationDb.destroy().catch(() => undefined);
  }

  const attempts = Math.max(1, opts.transactionAttempts ?? DEFAULT_TRANSACTION_ATTEMPTS);
  let closing: Promise<void> | undefined;
  const repos = createRepos({
    db,
    dialect,
    inTransaction: false,
    ...(sqliteUnits ? { transaction: sqliteUnits.run } : {}),
  });
  const background =
    backgroundDb === db ? repos : createRepos({ db: backgroundDb, dialect, inTransaction: false });

  return Object.freeze({
    dialect,
    ...repos,
    outbox: background.outbox,
    inbox: background.inbox,
    // The sweeps' and housekeeping's own calls, on the background pool too (see Store).
    refunds: Object.freeze({ ...repos.refunds, listByStatus: background.refunds.listByStatus }),
    idempotency: Object.freeze({ ...repos.idempotency, purgeExpired: background.idempotency.purgeExpired }),
    payments: Object.freeze({
      ...repos.payments,
      forgetCustomerEmails: background.payments.forgetCustomerEmails,
    }),

    async transaction<T>(fn: (tx: Repos) => Promise<T>): Promise<T> {
      for (let attempt = 1; ; attempt++) {
        try {
          if (sqliteUnits) {
            const { repos } = sqliteUnits;
            return await sqliteUnits.run(() => fn(repos));
          }
          return await db
            .transaction()
            .execute((trx) => fn(createRepos({ db: trx, dialect, inTransaction: true })));
        } catch (error) {
          if (attempt >= attempts || !isRetryableError(error)) throw error;
          logger.warn(
            { attempt, code: (error as { code?: unknown }).code },
            'store transaction hit a conflict; retrying',
          );
          await sleep(attempt * 10 + Math.random() * 20);
        }
      }
    },

    async ping() {
      if (dialect !== 'postgres') {
        await db.selectNoFrom((eb) => eb.lit(1).as('ok')).execute();
        return;
      }
      // Outside a transaction, transaction_read_only is what a new one would be: default_transaction_read_only, or
      // on in recovery.
      const { rows } = await sql<{ recovery: boolean; readOnly: string }>`
        select pg_is_in_recovery() as "recovery", current_setting('transaction_read_only') as "readOnly"`.execute(
        db,
      );
      const row = rows[0];
      if (row?.recovery) {
        throw refusesWrites('PostgreSQL refuses writes: the server is in recovery (a standby)', 'recovery');
      }
      if (row?.readOnly !== 'off') {
        throw refusesWrites(
          'PostgreSQL refuses writes: transaction_read_only is on (default_transaction_read_only set for the server, database or role)',
          'transaction_read_only',
        );
      }
    },

    async clockOffsetMs() {
      if (dialect !== 'postgres') return 0;
      // Timed on a connection already taken: the wait for one (the background pool busy with a purge, a scrape,
      // renewals) or its opening is no part of the round trip, and counted in it read as the database's clock
      // being ahead by half of it.
      return backgroundDb.connection().execute(async (conn) => {
        const before = Date.now();
        const { rows } = await sql<{ now: Date | string }>`select clock_timestamp() as now`.execute(conn);
        const after = Date.now();
        const at = rows[0]?.now;
        if (at === undefined) throw new Error('PostgreSQL answered no clock_timestamp()');
        return Math.round(new Date(at).getTime() - (before + after) / 2);
      });
    },

    close() {
      closing ??= destroy().then(() => logger.info('store closed'));
      return closing;
    },
  });
}

/**
 * existingOnly: throws LedgerSchemaError unless the migrations `applied` to the ledger are exactly this version's.
 * Migrating is the service's job, at its start: a tool of a newer version that migrated (reconcile) would upgrade a
 * ledger under an older service still running on it; and one of an older version reads a newer ledger's tables as it
 * does not know them.
 */
function requireSchemaOfThisVersion(dialect: Dialect, applied: readonly string[]): void {
  const known = Object.keys(storeMigrations(dialect)).sort();
  const missing = known.filter((name) => !applied.includes(name));
  const unknown = applied.filter((name) => !known.includes(name)).sort();
  if (missing.length > 0) {
    throw new LedgerSchemaError(
      `the ledger's schema is older than this version expects (not applied: ${missing.join(', ')}); nothing was changed. ` +
        "Run this version's service on it first (it upgrades the ledger at start), or use the version the service runs",
    );
  }
  if (unknown.length > 0) {
    throw new LedgerSchemaError(
      `the ledger's schema is newer than this version (applied by a later version: ${unknown.join(', ')}); ` +
        'nothing was changed. Use the version the service runs',
    );
  }
}

/** Creates the schema if needed (unless `existingOnly`) and returns the one migrations and tables live in. */
/** SQLSTATE read_only_sql_transaction: what PostgreSQL answers a write on a standby or a read-only session. */
const PG_READ_ONLY = '25006';

/**
 * What ping() found makes the database refuse writes: the server is in recovery (`pg_is_in_recovery()`, a standby),
 * or `transaction_read_only` is on (default_transaction_read_only set for the server, database or role). Carried as
 * `readOnlyBecause` by the cause of its error.
 */
export type ReadOnlyBecause = 'recovery' | 'transaction_read_only';

/**
 * ping()'s finding that the database takes no writes, carrying the SQLSTATE PostgreSQL gives its own refusal and
 * what made the database read-only (as the cause, with the same message, so that a description of the error says it
 * once): what reads it tells it by these, never by the message.
 */
function refusesWrites(message: string, readOnlyBecause: ReadOnlyBecause): StoreUnavailableError {
  return new StoreUnavailableError(message, {
    cause: Object.assign(new Error(message), { code: PG_READ_ONLY, readOnlyBecause }),
  });
}

async function preparePostgresSchema(
  db: Kysely<Database>,
  schema: string | undefined,
  existingOnly: boolean,
): Promise<string> {
  if (schema !== undefined && existingOnly) return schema;
  if (schema !== undefined) {
    try {
      await db.schema.createSchema(schema).ifNotExists().execute();
    } catch (error) {
      // Two processes creating the same schema at once: IF NOT EXISTS can still lose the race
      // on the catalog's unique index. The schema exists either way.
      const code = (error as { code?: unknown }).code;
      if (!(error instanceof DuplicateKeyError) && code !== '42P06') throw error;
    }
    return schema;
  }
  const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
  const current = rows[0]?.schema;
  if (!current) throw new Error('PostgreSQL search_path names no existing schema; pass the schema option');
  return current;
}
