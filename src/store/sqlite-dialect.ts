import { setTimeout as sleep } from 'node:timers/promises';
import { SelectQueryNode, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from 'kysely';
import type { DatabaseConnection, Dialect, Driver, Kysely, QueryResult, CompiledQuery } from 'kysely';
import type BetterSqlite3 from 'better-sqlite3';
import { isSqliteBusy } from './errors.js';

export interface SqliteDialectOptions {
  database: BetterSqlite3.Database;
  /** How long to keep retrying when another connection holds the write lock. */
  busyTimeoutMs: number;
}

/**
 * Kysely's own SQLite dialect, with two changes that matter once more than one connection
 * (process, or Store instance) shares the file:
 *
 * - transactions start with BEGIN IMMEDIATE, taking the write lock up front; a deferred BEGIN
 *   that reads and then writes can fail with SQLITE_BUSY_SNAPSHOT or deadlock on the upgrade;
 * - waiting for a lock happens with async sleeps instead of SQLite's busy handler, because
 *   better-sqlite3 is synchronous: the busy handler would block the event loop, and with it any
 *   other connection in this process that holds the lock and needs the loop to commit.
 */
export class ImmediateSqliteDialect implements Dialect {
  constructor(private readonly options: SqliteDialectOptions) {}

  createDriver(): Driver {
    return new ImmediateSqliteDriver(this.options);
  }
  createQueryCompiler() {
    return new SqliteQueryCompiler();
  }
  createAdapter() {
    return new TransactionalSqliteAdapter();
  }
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Kysely's own Dialect signature
  createIntrospector(db: Kysely<any>) {
    return new SqliteIntrospector(db);
  }
}

/**
 * SQLite does run DDL inside transactions, but Kysely's adapter says it does not, so its Migrator
 * would migrate without a transaction or lock and two processes starting on a new file would both
 * create the tables. Claiming support makes the Migrator re-read its state inside BEGIN IMMEDIATE.
 */
class TransactionalSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

/** Retries `run` while SQLite reports the database busy, without blocking the event loop. */
export async function retryWhileBusy<T>(run: () => T, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 2; ; delay = Math.min(delay * 2, 50)) {
    try {
      return run();
    } catch (error) {
      if (!isSqliteBusy(error) || Date.now() >= deadline) throw error;
    }
    // Jitter keeps two waiting connections from retrying in lock-step.
    await sleep(delay / 2 + Math.random() * delay);
  }
}

const STATEMENT_CACHE_SIZE = 200;

class ImmediateSqliteConnection implements DatabaseConnection {
  readonly #db: BetterSqlite3.Database;
  readonly #busyTimeoutMs: number;
  readonly #statements = new Map<string, BetterSqlite3.Statement>();

  constructor(db: BetterSqlite3.Database, busyTimeoutMs: number) {
    this.#db = db;
    this.#busyTimeoutMs = busyTimeoutMs;
  }

  #prepare(sql: string): BetterSqlite3.Statement {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.#db.prepare(sql);
      if (this.#statements.size >= STATEMENT_CACHE_SIZE) {
        const oldest = this.#statements.keys().next().value;
        if (oldest !== undefined) this.#statements.delete(oldest);
      }
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  #run<R>(compiledQuery: CompiledQuery): QueryResult<R> {
    const stmt = this.#prepare(compiledQuery.sql);
    const parameters = compiledQuery.parameters as unknown[];
    if (stmt.reader) return { rows: stmt.all(parameters) as R[] };
    const { changes, lastInsertRowid } = stmt.run(parameters);
    return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    // Outside a transaction a busy statement has not run at all, so running it again is safe.
    // Inside one we already hold the write lock (BEGIN IMMEDIATE) and should not see SQLITE_BUSY.
    if (this.#db.inTransaction) return this.#run<R>(compiledQuery);
    return retryWhileBusy(() => this.#run<R>(compiledQuery), this.#busyTimeoutMs);
  }

  async *streamQuery<R>(compiledQuery: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    if (!SelectQueryNode.is(compiledQuery.query)) throw new Error('SQLite can only stream select queries');
    const stmt = this.#prepare(compiledQuery.sql);
    for (const row of stmt.iterate(compiledQuery.parameters as unknown[])) yield { rows: [row as R] };
  }

  async exec(sql: string): Promise<void> {
    await retryWhileBusy(() => this.#db.exec(sql), this.#busyTimeoutMs);
  }

  get inTransaction(): boolean {
    return this.#db.inTransaction;
  }
}

class ImmediateSqliteDriver implements Driver {
  readonly #options: SqliteDialectOptions;
  readonly #mutex = new ConnectionMutex();
  readonly #connection: ImmediateSqliteConnection;

  constructor(options: SqliteDialectOptions) {
    this.#options = options;
    this.#connection = new ImmediateSqliteConnection(options.database, options.busyTimeoutMs);
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    // One better-sqlite3 handle per Store: queries queue here, exactly as in Kysely's driver.
    await this.#mutex.lock();
    return this.#connection;
  }

  async beginTransaction(): Promise<void> {
    // Isolation settings are ignored: SQLite transactions are always serializable.
    await this.#connection.exec('begin immediate');
  }

  async commitTransaction(): Promise<void> {
    await this.#connection.exec('commit');
  }

  async rollbackTransaction(): Promise<void> {
    // SQLite rolls back by itself after some errors (e.g. SQLITE_FULL); a second rollback would throw.
    if (this.#connection.inTransaction) await this.#connection.exec('rollback');
  }

  async savepoint(_connection: DatabaseConnection, name: string): Promise<void> {
    await this.#connection.exec(`savepoint ${quoteIdentifier(name)}`);
  }

  async rollbackToSavepoint(_connection: DatabaseConnection, name: string): Promise<void> {
    await this.#connection.exec(`rollback to ${quoteIdentifier(name)}`);
  }

  async releaseSavepoint(_connection: DatabaseConnection, name: string): Promise<void> {
    await this.#connection.exec(`release ${quoteIdentifier(name)}`);
  }

  async releaseConnection(): Promise<void> {
    this.#mutex.unlock();
  }

  async destroy(): Promise<void> {
    if (this.#options.database.open) this.#options.database.close();
  }
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

class ConnectionMutex {
  #promise: Promise<void> | undefined;
  #resolve: (() => void) | undefined;

  async lock(): Promise<void> {
    while (this.#promise) await this.#promise;
    this.#promise = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  unlock(): void {
    const resolve = this.#resolve;
    this.#promise = undefined;
    this.#resolve = undefined;
    resolve?.();
  }
}
