import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
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
  try {
    db.pragma(`busy_timeout = ${BLOCKING_BUSY_MS}`);
    // Switching to WAL needs a moment of exclusive access when another connection opens the
    // file at the same time.
    const mode = await retryWhileBusy(
      () => db.pragma('journal_mode = WAL', { simple: true }) as string,
      opts.busyTimeoutMs,
    );
    if (!memory && String(mode).toLowerCase() !== 'wal') {
      opts.logger.warn({ journalMode: mode }, 'SQLite did not switch to WAL; concurrent readers will block');
    }
    // FULL fsyncs the WAL on every commit: an accepted refund survives a power cut. NORMAL may
    // lose the last commits (never corrupts), for a faster embedded mode where that is acceptable.
    db.pragma(`synchronous = ${opts.synchronous}`);
    db.pragma('foreign_keys = ON');
  } catch (error) {
    db.close();
    throw error;
  }
  return new ImmediateSqliteDialect({ database: db, busyTimeoutMs: opts.busyTimeoutMs });
}
