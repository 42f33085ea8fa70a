import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
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
