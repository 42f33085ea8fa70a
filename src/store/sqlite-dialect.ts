import { closeSync, fdatasync, openSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { SelectQueryNode, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler } from 'kysely';
import type { DatabaseConnection, Dialect, Driver, Kysely, QueryResult, CompiledQuery } from 'kysely';
import type BetterSqlite3 from 'better-sqlite3';
import { isSqliteBusy, toStoreError } from './errors.js';

export interface SqliteDialectOptions {
  database: BetterSqlite3.Database;
  /** How long to keep retrying when another connection holds the write lock. */
  busyTimeoutMs: number;
  /**
   * The database's WAL file, when the connection runs with synchronous=NORMAL and durability is
   * this driver's job: after each group's COMMIT it fdatasyncs the WAL off the event loop (see WalSync).
   */
  walPath?: string;
  /** The thread that checkpoints the WAL (see WalCheckpointer): stopped before the connection closes. */
  checkpointer?: { close(): Promise<void> };
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
 *
 * And one for throughput: writes of the same event-loop turn share one commit (see the driver).
 */
export class ImmediateSqliteDialect implements Dialect {
  #driver: ImmediateSqliteDriver | null = null;

  constructor(private readonly options: SqliteDialectOptions) {}

  createDriver(): Driver {
    if (this.#driver) throw new Error('an ImmediateSqliteDialect serves one Kysely instance');
    return (this.#driver = new ImmediateSqliteDriver(this.options));
  }

  /**
   * Runs `fn` as one transaction (a unit of the group commit), as `db.transaction().execute()` would, but
   * without a Kysely Transaction, executor and connection provider per call: `fn` runs its queries on a
   * Kysely handle made once with unitDialect(), which reaches whichever unit is open.
   */
  runUnit<T>(fn: () => Promise<T>): Promise<T> {
    return this.#requireDriver().runUnit(fn);
  }

  /** What Kysely's executor does with a compiled query on the store's handle: acquire, run, release. */
  executeAlone<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    return this.#requireDriver().executeAlone<R>(compiledQuery);
  }

  /** What Kysely's executor does with a compiled query on the unit handle: run it in the open unit. */
  executeInUnit<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    return this.#requireDriver().unitConnection().executeQuery<R>(compiledQuery);
  }

  #requireDriver(): ImmediateSqliteDriver {
    if (!this.#driver) throw new Error('the Kysely instance of this dialect was not created yet');
    return this.#driver;
  }

  /**
   * A dialect for a second Kysely instance whose every query runs in the unit runUnit has open. One such
   * instance serves every unit: SQLite has one connection, and a unit holds it from begin to commit.
   * A query made on it outside a unit fails instead of running outside the transaction.
   */
  unitDialect(): Dialect {
    return {
      createDriver: () => new UnitDriver(this.#requireDriver()),
      createQueryCompiler: () => new SqliteQueryCompiler(),
      createAdapter: () => new TransactionalSqliteAdapter(),
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Kysely's own Dialect signature
      createIntrospector: (db: Kysely<any>) => new SqliteIntrospector(db),
    };
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

  /** Prepared statements, least recently used first: a burst of one-off SQL evicts only one-off SQL. */
  #prepare(sql: string): BetterSqlite3.Statement {
    let stmt = this.#statements.get(sql);
    if (stmt) {
      this.#statements.delete(sql);
    } else {
      stmt = this.#db.prepare(sql);
      if (this.#statements.size >= STATEMENT_CACHE_SIZE) {
        const oldest = this.#statements.keys().next().value;
        if (oldest !== undefined) this.#statements.delete(oldest);
      }
    }
    this.#statements.set(sql, stmt);
    return stmt;
  }

  /** Unique violations leave here as DuplicateKeyError (see toStoreError), whoever ran the statement. */
  #run<R>(compiledQuery: CompiledQuery): QueryResult<R> {
    try {
      const stmt = this.#prepare(compiledQuery.sql);
      const parameters = compiledQuery.parameters as unknown[];
      if (stmt.reader) return { rows: stmt.all(parameters) as R[] };
      const { changes, lastInsertRowid } = stmt.run(parameters);
      return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
    } catch (error) {
      throw toStoreError(error);
    }
  }

  /** Runs on the connection as it is (inside the open transaction, if any). */
  run<R>(compiledQuery: CompiledQuery): QueryResult<R> {
    return this.#run<R>(compiledQuery);
  }

  /** A statement that only reads needs no write lock and no commit. */
  isReadonly(compiledQuery: CompiledQuery): boolean {
    return this.#prepare(compiledQuery.sql).readonly;
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
    await retryWhileBusy(() => this.#runControl(sql), this.#busyTimeoutMs);
  }

  /** For statements that cannot meet SQLITE_BUSY: we already hold the write lock. */
  execNow(sql: string): void {
    this.#runControl(sql);
  }

  /**
   * Transaction control (BEGIN, COMMIT, ROLLBACK, savepoints): one statement each, run several times per
   * group commit. db.exec would parse and compile it on every call; the statement cache keeps them prepared.
   */
  #runControl(sql: string): void {
    this.#prepare(sql).run();
  }

  get inTransaction(): boolean {
    return this.#db.inTransaction;
  }
}

/** Commits of one group: every member's promise settles with the one COMMIT that made it durable. */
interface Group {
  members: number;
  startedAt: number;
  done: Promise<void>;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * One acquisition of the connection. Kysely hands it back to begin/commit/rollback/release, which is
 * how the driver knows whose work is in the open group and who still holds the connection.
 */
class Lease implements DatabaseConnection {
  /** Inside a Kysely transaction (a savepoint within the group). */
  inUnit = false;
  /** The group this lease wrote to (or read from): it settles when that group commits. */
  group: Group | null = null;
  released = false;

  constructor(readonly driver: ImmediateSqliteDriver) {}

  executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    return this.driver.execute<R>(this, compiledQuery);
  }

  streamQuery<R>(compiledQuery: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    return this.driver.stream<R>(this, compiledQuery);
  }
}

/**
 * Durable commits without blocking the event loop. With synchronous=FULL SQLite fsyncs the WAL inside
 * COMMIT, on the JS thread: every request in the process stalls for the disk. Instead the connection
 * runs with synchronous=NORMAL (COMMIT only write()s the WAL frames) and this class fdatasyncs the WAL
 * file on libuv's thread pool afterwards: the same guarantee as FULL (SQLite's FULL in WAL mode is
 * exactly "NORMAL plus a sync of the WAL after each commit"), paid off the main thread and shared by
 * every commit made while the previous sync was running. A checkpoint syncs the WAL before copying it
 * and the database after, so frames that a checkpoint moved out of the WAL are durable too.
 *
 * Nobody hears about a commit before its sync has returned: writers wait for their group's sync, and
 * readers (see the driver's #leave) for the sync of every commit made before they finished, so no
 * answer ever shows data that a power cut could still take back.
 */
class WalSync {
  readonly #path: string;
  #fd: number | null = null;
  /** Commits made / commits known durable, counted by sequence number. */
  #committed = 0;
  #synced = 0;
  #inFlight = false;
  #failure: unknown = null;
  #waiters: { seq: number; resolve: () => void; reject: (error: unknown) => void }[] = [];

  constructor(path: string) {
    this.#path = path;
  }

  /** Call right after a successful COMMIT; resolves once that commit is on disk. */
  committed(): Promise<void> {
    return this.#waitFor(++this.#committed);
  }

  /** Resolves once every commit made so far is on disk; null when nothing is waiting. */
  durable(): Promise<void> | null {
    if (this.#failure) return Promise.reject(this.#failure);
    return this.#synced >= this.#committed ? null : this.#waitFor(this.#committed);
  }

  /** Waits for outstanding syncs and closes the file. */
  async close(): Promise<void> {
    await this.durable()?.catch(() => undefined);
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }

  #waitFor(seq: number): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ seq, resolve, reject });
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#inFlight || this.#waiters.length === 0) return;
    const target = this.#committed;
    let fd: number;
    try {
      // The WAL exists once a commit has written to it; it is never replaced while we hold the database open.
      fd = this.#fd ??= openSync(this.#path, 'r');
    } catch (error) {
      // No WAL yet (only empty commits since the database was opened): there is nothing to make durable.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') this.#settle(target);
      else this.#fatal(error);
      return;
    }
    this.#inFlight = true;
    fdatasync(fd, (error) => {
      this.#inFlight = false;
      if (error) this.#fatal(error);
      else this.#settle(target);
    });
  }

  /** Every commit up to `target` is on disk: tell their waiters, then sync whatever came since. */
  #settle(target: number): void {
    this.#synced = Math.max(this.#synced, target);
    const still = [];
    for (const w of this.#waiters) {
      if (w.seq <= target) w.resolve();
      else still.push(w);
    }
    this.#waiters = still;
    this.#kick();
  }

  /**
   * A failed fsync may have dropped the dirty pages (Linux clears the error after reporting it once), so
   * nothing written since the last good sync can be called durable again: every waiter and every later
   * caller gets the error, the store's ping fails and /readyz reports it until the process is restarted.
   */
  #fatal(error: unknown): void {
    this.#failure = error;
    for (const w of this.#waiters) w.reject(error);
    this.#waiters = [];
  }
}

/** A group stays open at most this long or for this many members, so other processes get the lock too. */
const GROUP_MAX_MS = 10;
const GROUP_MAX_MEMBERS = 128;
const UNIT_SAVEPOINT = '"group_commit_unit"';

/**
 * Group commit. A durable COMMIT waits for the disk, so one commit per transaction caps a process at a
 * few hundred writes per second. Instead, the transactions and single writes of one turn of the event
 * loop share one BEGIN IMMEDIATE ... COMMIT: each Kysely transaction runs in its own savepoint (a
 * failure rolls back only its own writes), and nobody hears "done" before the COMMIT that makes their
 * writes durable has returned (and, with `walPath`, the WAL sync after it: see WalSync). Reads that run
 * while a group is open wait for it too, so no caller ever sees data that could still be lost. Alone, a
 * transaction commits one event-loop turn later than before.
 */
class ImmediateSqliteDriver implements Driver {
  readonly #options: SqliteDialectOptions;
  readonly #mutex = new ConnectionMutex();
  readonly #connection: ImmediateSqliteConnection;
  readonly #wal: WalSync | null;
  #group: Group | null = null;
  #commitScheduled = false;
  /** The lease holding the connection (the mutex), if any. */
  #holder: Lease | null = null;

  constructor(options: SqliteDialectOptions) {
    this.#options = options;
    this.#connection = new ImmediateSqliteConnection(options.database, options.busyTimeoutMs);
    this.#wal = options.walPath ? new WalSync(options.walPath) : null;
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    // One better-sqlite3 handle per Store: queries queue here, exactly as in Kysely's driver.
    await this.#mutex.lock();
    return (this.#holder = new Lease(this));
  }

  /** Kysely's TransactionBuilder.execute, step for step, for a caller that needs no Transaction object. */
  async runUnit<T>(fn: () => Promise<T>): Promise<T> {
    const lease = (await this.acquireConnection()) as Lease;
    try {
      await this.beginTransaction(lease);
      const result = await fn();
      await this.commitTransaction(lease);
      return result;
    } catch (error) {
      await this.rollbackTransaction(lease);
      throw error;
    } finally {
      await this.releaseConnection(lease);
    }
  }

  /** Kysely's DefaultConnectionProvider around one query. */
  async executeAlone<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    const lease = (await this.acquireConnection()) as Lease;
    try {
      return await this.execute<R>(lease, compiledQuery);
    } finally {
      await this.releaseConnection(lease);
    }
  }

  /** The connection of the unit runUnit has open. */
  unitConnection(): DatabaseConnection {
    const lease = this.#holder;
    if (!lease?.inUnit) throw new Error('a transaction handle was used outside its transaction');
    return lease;
  }

  async execute<R>(lease: Lease, compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    if (lease.inUnit) return this.#runInGroup<R>(compiledQuery);
    if (!this.#group) {
      if (this.#connection.isReadonly(compiledQuery)) return this.#connection.executeQuery<R>(compiledQuery);
      await this.#openGroup();
    }
    this.#join(lease);
    return this.#runInGroup<R>(compiledQuery);
  }

  async *stream<R>(lease: Lease, compiledQuery: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
    if (this.#group && !lease.inUnit) this.#join(lease);
    yield* this.#connection.streamQuery<R>(compiledQuery);
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    // Isolation settings are ignored: SQLite transactions are always serializable.
    const lease = connection as Lease;
    if (!this.#group) await this.#openGroup();
    this.#join(lease);
    this.#connection.execNow(`savepoint ${UNIT_SAVEPOINT}`);
    lease.inUnit = true;
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const lease = connection as Lease;
    this.#connection.execNow(`release ${UNIT_SAVEPOINT}`);
    lease.inUnit = false;
    await this.#leave(lease);
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const lease = connection as Lease;
    // After a failed group commit the connection already belongs to someone else.
    if (lease.released) return;
    lease.inUnit = false;
    const group = lease.group;
    lease.group = null; // a rolled-back unit has nothing left to wait for
    if (this.#connection.inTransaction) {
      this.#connection.execNow(`rollback to ${UNIT_SAVEPOINT}`);
      this.#connection.execNow(`release ${UNIT_SAVEPOINT}`);
    } else if (group) {
      // SQLite rolled the whole transaction back by itself (e.g. SQLITE_FULL): the group is lost.
      this.#fail(
        group,
        new Error('SQLite rolled back a group commit after an error in one of its transactions'),
      );
    }
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

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    const lease = connection as Lease;
    if (lease.released) return;
    await this.#leave(lease);
  }

  async destroy(): Promise<void> {
    // A group whose commit is still scheduled holds finished work: make it durable before closing.
    if (this.#group && !this.#mutex.locked) this.#commit(this.#group);
    await this.#wal?.close();
    // Its connection first, so that closing ours (the last) checkpoints the WAL and removes it.
    await this.#options.checkpointer?.close();
    if (this.#options.database.open) this.#options.database.close();
  }

  async #openGroup(): Promise<void> {
    await this.#connection.exec('begin immediate');
    let resolve!: () => void;
    let reject!: (error: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => undefined); // members await it; this only keeps an unawaited failure quiet
    this.#group = { members: 0, startedAt: performance.now(), done, resolve, reject };
  }

  #join(lease: Lease): void {
    if (this.#group && lease.group !== this.#group) {
      lease.group = this.#group;
      this.#group.members++;
    }
  }

  #runInGroup<R>(compiledQuery: CompiledQuery): QueryResult<R> {
    try {
      return this.#connection.run<R>(compiledQuery);
    } catch (error) {
      // Most errors undo only the statement; a few (SQLITE_FULL, IOERR) roll back the whole group.
      if (this.#group && !this.#connection.inTransaction) this.#fail(this.#group, error);
      throw error;
    }
  }

  /**
   * Gives the connection up. The group commits at the end of this turn of the event loop, so the I/O
   * callbacks that are already due (other requests, Stripe answers) can add their writes to it first.
   */
  async #leave(lease: Lease): Promise<void> {
    lease.released = true;
    if (this.#holder === lease) this.#holder = null;
    const group = this.#group;
    if (group) {
      if (group.members >= GROUP_MAX_MEMBERS || performance.now() - group.startedAt >= GROUP_MAX_MS) {
        this.#commit(group);
      } else if (!this.#commitScheduled) {
        this.#commitScheduled = true;
        setImmediate(() => {
          this.#commitScheduled = false;
          // The group open now, which may be a newer one than when this was scheduled (an old one can be
          // committed early, at its size or age limit). Whoever holds the connection commits or
          // schedules when it leaves.
          if (this.#group && !this.#mutex.locked) this.#commit(this.#group);
        });
      }
    }
    this.#mutex.unlock();
    if (lease.group) await lease.group.done;
    // A read may have seen a commit whose sync is still running: it answers only once that is on disk.
    else await this.#wal?.durable();
  }

  #commit(group: Group): void {
    this.#group = null;
    try {
      this.#connection.execNow('commit');
    } catch (error) {
      if (this.#connection.inTransaction) {
        try {
          this.#connection.execNow('rollback');
        } catch {
          // the connection is unusable either way; the next BEGIN reports it
        }
      }
      group.reject(error);
      return;
    }
    if (this.#wal) this.#wal.committed().then(group.resolve, group.reject);
    else group.resolve();
  }

  #fail(group: Group, error: unknown): void {
    if (this.#group === group) this.#group = null;
    group.reject(error);
  }
}

/** The driver of unitDialect(): every connection it hands out is the open unit's. */
class UnitDriver implements Driver {
  constructor(private readonly driver: ImmediateSqliteDriver) {}
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    return this.driver.unitConnection();
  }
  async beginTransaction(): Promise<void> {
    throw new Error('transactions do not nest: this handle already is one');
  }
  async commitTransaction(): Promise<void> {
    throw new Error('transactions do not nest: this handle already is one');
  }
  async rollbackTransaction(): Promise<void> {
    throw new Error('transactions do not nest: this handle already is one');
  }
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {}
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

class ConnectionMutex {
  #promise: Promise<void> | undefined;
  #resolve: (() => void) | undefined;
  get locked(): boolean {
    return this.#promise !== undefined;
  }

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
