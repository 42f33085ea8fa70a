/**
 * WAL checkpoints on a worker thread (src/store/sqlite-checkpointer.ts). SQLite's own automatic
 * checkpoint copies the WAL into the database file and fsyncs both inside the COMMIT that crosses 1000
 * pages, on the event loop. What a user of the store relies on instead: the rows reach the database
 * file without any commit doing that work, the WAL stops growing under steady writes, closing the store
 * leaves no WAL behind, and if the thread cannot run SQLite checkpoints on commit as before. The store's
 * connection keeps SQLite's own checkpoint at a far larger WAL, where it starts the WAL over.
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createStore } from '../../src/store/index.js';
import { WalCheckpointer } from '../../src/store/sqlite-checkpointer.js';
import { captureLogger } from '../helpers/log-capture.js';
import { eventually } from '../helpers/service.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How long the thread may take to start and act: its polls are every few milliseconds to 250 ms. */
const WAIT_MS = 6_000;

/** Rows in a copy of the database file alone (no -wal): what has been checkpointed into it. */
function rowsInDatabaseFile(file: string, dir: string, table: string): number {
  const copy = join(dir, `copy-${Date.now()}-${Math.random()}.db`);
  copyFileSync(file, copy);
  try {
    const db = new Database(copy, { readonly: true });
    try {
      return (db.prepare(`select count(*) as n from ${table}`).get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return -1; // copied mid-checkpoint, or the table is not there yet: ask again
  } finally {
    rmSync(copy, { force: true });
  }
}

/** The messages logged at `level` (pino's number: 40 warn, 50 error). */
const messagesAt = (lines: string[], level: number): string[] =>
  lines
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .filter((l) => l.level === level)
    .map((l) => l.msg);

/** Waits until something is logged at `level`, and returns those messages. */
const loggedAt = (lines: string[], level: number): Promise<string[]> =>
  eventually(
    async () => messagesAt(lines, level),
    (messages) => messages.length > 0,
    WAIT_MS,
  );

describe('SQLite WAL checkpoints off the event loop', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'wal-checkpoint-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** A connection of the test's own on a new file in WAL mode, as the store's would be. */
  const walDatabase = (name: string, schema?: string) => {
    const file = join(dir, name);
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    if (schema) db.exec(schema);
    return { file, db };
  };

  it('moves committed rows into the database file in the background, with far fewer than 1000 pages written', async () => {
    const file = join(dir, 'ledger.db');
    const store = await createStore({ url: `sqlite:${file}` });
    try {
      const n = 50;
      await Promise.all(
        Array.from({ length: n }, (_, i) =>
          store.refunds.insert({
            requestId: `bg_${i}`,
            paymentIntentId: 'pi_bg',
            amount: 1,
            status: 'queued',
            mode: 'async',
          }),
        ),
      );
      // Nothing more is written or closed: only the checkpointer can put the rows into the file.
      const inFile = await eventually(
        async () => rowsInDatabaseFile(file, dir, 'refunds'),
        (rows) => rows === n,
        WAIT_MS,
      );
      expect(inFile).toBe(n);
      // The WAL is still there: the rows were copied by a checkpoint, not by a close.
      expect(existsSync(`${file}-wal`)).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('closing the store also closes the thread’s connection, so no WAL is left behind', async () => {
    const file = join(dir, 'ledger.db');
    const store = await createStore({ url: `sqlite:${file}` });
    await store.refunds.insert({
      requestId: 'close_1',
      paymentIntentId: 'pi_close',
      amount: 1,
      status: 'queued',
      mode: 'async',
    });
    // Once the thread has copied the row into the file, its connection is open.
    const inFile = await eventually(
      async () => rowsInDatabaseFile(file, dir, 'refunds'),
      (rows) => rows === 1,
      WAIT_MS,
    );
    expect(inFile).toBe(1);
    expect(existsSync(`${file}-wal`)).toBe(true);
    await store.close();
    expect(existsSync(`${file}-wal`)).toBe(false);
    const db = new Database(file, { readonly: true });
    try {
      expect(db.prepare("select count(*) as n from refunds where request_id = 'close_1'").get()).toEqual({
        n: 1,
      });
    } finally {
      db.close();
    }
  });

  it('keeps the WAL bounded under a writer that never pauses, SQLite’s own checkpoint moved to the backstop', async () => {
    const { file, db } = walDatabase(
      'steady.db',
      'create table t (id integer primary key, body text not null)',
    );
    const { logger } = captureLogger();
    const checkpointer = new WalCheckpointer({
      database: db,
      path: file,
      logger,
      intervalMs: 20,
      backstopFrames: 256,
    });
    try {
      const autocheckpoint = async () => db.pragma('wal_autocheckpoint', { simple: true });
      expect(await eventually(autocheckpoint, (pages) => pages === 256, WAIT_MS)).toBe(256);

      // 3000 commits of 3 KiB, one a turn of the event loop: ~12 MB of WAL if it never starts over.
      const insert = db.prepare('insert into t (body) values (?)');
      const body = 'x'.repeat(3072);
      let largestWal = 0;
      for (let written = 1; written <= 3000; written++) {
        insert.run(body);
        if (written % 20 === 0) largestWal = Math.max(largestWal, statSync(`${file}-wal`).size);
        await new Promise((r) => setImmediate(r));
      }
      // 256 frames are ~1 MB: the WAL was started over again and again. It stays under ~3 MB on an idle machine;
      // on a loaded one the thread's checkpoint, which holds the checkpoint lock, can make the writer skip its
      // own a few times (3.8 MB seen in CI). Without the backstop it reaches ~37 MB.
      expect(largestWal).toBeLessThan(8 * 1024 * 1024);
    } finally {
      await checkpointer.close();
      db.close();
    }
  });

  it('when the store’s connection is busy with a query as the thread starts, logs it and keeps SQLite’s own checkpoint', async () => {
    const { file, db } = walDatabase(
      'busy.db',
      'create table t (id integer primary key); insert into t values (1), (2)',
    );
    // An open iterator keeps the connection busy: any other statement on it throws meanwhile.
    const rows = db.prepare('select id from t').iterate();
    rows.next();
    const { logger, lines } = captureLogger();
    const checkpointer = new WalCheckpointer({ database: db, path: file, logger });
    try {
      const warnings = await loggedAt(lines, 40);
      expect(warnings).toContain('could not set SQLite’s automatic checkpoint');
      rows.return?.();
      expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    } finally {
      rows.return?.();
      await checkpointer.close();
      db.close();
    }
  });

  it('when its thread cannot open the database, says so and leaves SQLite’s own checkpoint on', async () => {
    const { db } = walDatabase('real.db');
    const { logger, lines } = captureLogger();
    const checkpointer = new WalCheckpointer({ database: db, path: join(dir, 'missing', 'nope.db'), logger });
    try {
      const errors = await loggedAt(lines, 50);
      expect(errors).toContain('WAL checkpointer thread failed');
      expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
      await sleep(200);
      expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    } finally {
      await checkpointer.close();
      db.close();
    }
  });
});
