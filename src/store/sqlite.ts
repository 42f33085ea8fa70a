import { closeSync, existsSync, mkdirSync, openSync, readSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { NoLedgerError } from './errors.js';
import { MIGRATION_TABLE } from './migrations.js';
import { WalCheckpointer } from './sqlite-checkpointer.js';
import { ImmediateSqliteDialect, retryWhileBusy } from './sqlite-dialect.js';

export interface SqliteOptions {
  path: string;
  synchronous: 'FULL' | 'NORMAL';
  busyTimeoutMs: number;
  logger: Logger;
}

/**
 * SQLite's own busy handler blocks the (single) JS thread; keep that short and do the real waiting
 * asynchronously in the dialect (see ImmediateSqliteDialect).
 */
const BLOCKING_BUSY_MS = 10;

export async function createSqliteDialect(opts: SqliteOptions): Promise<ImmediateSqliteDialect> {
  const memory = opts.path === ':memory:';
  if (!memory) mkdirSync(dirname(resolve(opts.path)), { recursive: true });
  const db = new Database(opts.path, { timeout: BLOCKING_BUSY_MS });
  let wal = false;
  let checkpointer: WalCheckpointer | undefined;
  try {
    db.pragma(`busy_timeout = ${BLOCKING_BUSY_MS}`);
    // Switching to WAL needs a moment of exclusive access when another connection opens the
    // file at the same time.
    const mode = await retryWhileBusy(
      () => db.pragma('journal_mode = WAL', { simple: true }) as string,
      opts.busyTimeoutMs,
    );
    const walMode = !memory && String(mode).toLowerCase() === 'wal';
    if (!memory && !walMode) {
      opts.logger.warn({ journalMode: mode }, 'SQLite did not switch to WAL; concurrent readers will block');
    }
    // FULL: every commit is on disk before anyone hears of it, so an accepted refund survives a power
    // cut. In WAL mode SQLite would fsync inside COMMIT, on the event loop; the dialect does the same
    // sync on the thread pool instead (SQLite itself runs NORMAL and the dialect syncs the WAL after each
    // commit). NORMAL alone may lose the last commits (never corrupts), where that is acceptable.
    wal = walMode && opts.synchronous === 'FULL';
    db.pragma(`synchronous = ${wal ? 'NORMAL' : opts.synchronous}`);
    db.pragma('foreign_keys = ON');
    // Checkpoints move off the event loop (see WalCheckpointer), whatever the synchronous setting.
    if (walMode) {
      checkpointer = new WalCheckpointer({ database: db, path: resolve(opts.path), logger: opts.logger });
    }
  } catch (error) {
    db.close();
    throw error;
  }
  return new ImmediateSqliteDialect({
    database: db,
    busyTimeoutMs: opts.busyTimeoutMs,
    ...(wal ? { walPath: `${resolve(opts.path)}-wal` } : {}),
    ...(checkpointer ? { checkpointer } : {}),
  });
}

/**
 * For existingOnly (reconcile): throws NoLedgerError unless `path` holds a ledger, finding out without creating or
 * changing anything; returns the migrations applied to it. createSqliteDialect creates a missing file and its folder, and switches the file to WAL mode
 * (rewriting its header, with -wal and -shm files beside it): pointed at a wrong path, reconcile left an empty
 * database behind, or changed another application's before refusing it.
 *
 * A file in WAL mode already is read over an ordinary connection without any pragma: SQLite changes nothing in
 * the file for a read, and the -wal and -shm files it needs meanwhile are removed by the last connection to close,
 * as every reader's are. A read-only connection would not do: it creates them when they are missing and, unable
 * to remove them, leaves them behind. Any other file (rollback journal, empty, not a database) is read read-only.
 */
export async function requireSqliteLedger(path: string, busyTimeoutMs: number): Promise<string[]> {
  if (path === ':memory:') throw new NoLedgerError('a new in-memory SQLite database holds no ledger');
  const file = resolve(path);
  if (!existsSync(file)) throw new NoLedgerError(`there is no SQLite database at ${file}`);
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: !inWalMode(file), fileMustExist: true, timeout: BLOCKING_BUSY_MS });
  } catch (error) {
    throw notADatabase(error) ?? error;
  }
  try {
    const applied = await retryWhileBusy(() => {
      const table = db
        .prepare("select 1 from sqlite_master where type = 'table' and name = ?")
        .get(MIGRATION_TABLE);
      if (table === undefined) return [];
      return (db.prepare(`select name from ${MIGRATION_TABLE}`).all() as { name: string }[]).map(
        (r) => r.name,
      );
    }, busyTimeoutMs);
    if (applied.length === 0) throw new NoLedgerError("the database has none of the service's tables");
    return applied;
  } catch (error) {
    throw notADatabase(error) ?? error;
  } finally {
    db.close();
  }
}

/** A file that is not an SQLite database at all (SQLITE_NOTADB) holds no ledger either. */
function notADatabase(error: unknown): NoLedgerError | null {
  return (error as { code?: unknown }).code === 'SQLITE_NOTADB'
    ? new NoLedgerError('the file is not an SQLite database')
    : null;
}

/** The database header says WAL mode (its read and write versions are 2; 1 is a rollback journal). */
function inWalMode(file: string): boolean {
  const header = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  try {
    return (
      readSync(fd, header, 0, header.length, 0) === header.length && header[18] === 2 && header[19] === 2
    );
  } finally {
    closeSync(fd);
  }
}
