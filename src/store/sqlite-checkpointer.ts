import { once } from 'node:events';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';
import type { Logger } from 'pino';

/** How often the background connection checkpoints (PASSIVE: it never waits for, nor blocks, a writer). */
export const CHECKPOINT_INTERVAL_MS = 250;
/**
 * The store's connection keeps SQLite's automatic checkpoint, at this many WAL frames (pages, 4 KiB by
 * default) instead of 1000. Under steady writes a checkpoint in another connection never quite catches
 * up with the writer, and SQLite starts the WAL over only once one has: this one, in the writer's own
 * connection between its commits, does. By then the thread has copied all but the last moments' frames,
 * so it is short. It also bounds the WAL (16 MiB) should the thread fall behind.
 */
export const BACKSTOP_FRAMES = 4096;

/** SQLite's default: the COMMIT that takes the WAL past this many pages checkpoints it. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1000;

export interface CheckpointerOptions {
  /** The store's connection: its automatic checkpoint moves to `backstopFrames` while the thread runs. */
  database: BetterSqlite3.Database;
  /** The database file (not the -wal file). */
  path: string;
  logger: Logger;
  intervalMs?: number;
  backstopFrames?: number;
}

/**
 * The worker's code, run with `eval: true` so that the bundle (dist/src/main.bundle.mjs), the tsc
 * build and tsx all start the same thing without a separate entry file. better-sqlite3 is loaded from
 * the absolute path the main thread resolved, since the worker resolves nothing relative to this file.
 *
 * Its connection runs synchronous=FULL, so every checkpoint syncs the WAL before copying frames into
 * the database, and syncs the database before the WAL may be started over: a commit that a checkpoint
 * moves out of the WAL stays as durable as it was (see WalSync in sqlite-dialect.ts).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path, { fileMustExist: true });
db.pragma('synchronous = FULL');
parentPort.postMessage({ kind: 'ready' });
let closed = false;
function checkpoint() {
  if (closed) return;
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    parentPort.postMessage({ kind: 'error', message: String(error && error.message || error) });
  }
}
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'close') return;
  closed = true;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/**
 * Checkpoints of a WAL-mode SQLite file, on a worker thread with its own connection. With SQLite's
 * automatic checkpoint, the COMMIT that takes the WAL past 1000 pages copies them into the database
 * file and fsyncs both, on the event loop: a stall of milliseconds, and on a 2-core VM ~35 µs of the
 * main thread per row written (measured with better-sqlite3 on this project's refunds table). This
 * thread does that work beside the writers (SQLite's WAL locking lets one checkpointer run next to
 * them); the store's connection checkpoints only past BACKSTOP_FRAMES, to start the WAL over. Several
 * processes on one file each run one; a checkpoint that finds another running skips. The backstop
 * replaces SQLite's 1000 pages only once the thread has opened the file, and 1000 comes back if the
 * thread dies, so the WAL is always checkpointed by someone.
 */
export class WalCheckpointer {
  readonly #worker: Worker;
  readonly #exited: Promise<unknown>;
  #closing: Promise<void> | null = null;

  constructor(opts: CheckpointerOptions) {
    const log = opts.logger.child({ component: 'sqlite-checkpointer' });
    const interval = opts.intervalMs ?? CHECKPOINT_INTERVAL_MS;
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        path: opts.path,
        intervalMs: interval,
      },
      // A small heap: the thread only calls into SQLite.
      resourceLimits: { maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1 },
      stdout: false,
      stderr: false,
    });
    const db = opts.database;
    const backstop = opts.backstopFrames ?? BACKSTOP_FRAMES;
    // From an event handler: a connection busy with a statement would throw, and must not take the process down.
    const setAutocheckpoint = (pages: number) => {
      try {
        db.pragma(`wal_autocheckpoint = ${pages}`);
      } catch (err) {
        log.warn({ err, pages }, 'could not set SQLite’s automatic checkpoint');
      }
    };
    this.#worker.on('message', (m: { kind: string; message?: string }) => {
      if (m.kind === 'ready') {
        if (db.open && !this.#closing) setAutocheckpoint(backstop);
      } else if (m.kind === 'error') log.error({ err: { message: m.message } }, 'WAL checkpoint failed');
    });
    this.#worker.on('error', (err) => log.error({ err }, 'WAL checkpointer thread failed'));
    this.#exited = once(this.#worker, 'exit').catch(() => undefined);
    void this.#exited.then(() => {
      if (this.#closing || !db.open) return;
      log.error('WAL checkpointer thread exited; SQLite checkpoints on commit again');
      setAutocheckpoint(SQLITE_AUTOCHECKPOINT_PAGES);
    });
    // It must not keep the process alive; close() ends it.
    this.#worker.unref();
  }

  /** Stops the thread and closes its connection (before the store's own, so that one is the last). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#worker.postMessage('close');
      const timer = setTimeout(() => void this.#worker.terminate(), 5_000);
      await this.#exited;
      clearTimeout(timer);
    })();
    return this.#closing;
  }
}
