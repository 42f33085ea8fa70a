/**
 * SQLite group commit (src/store/sqlite-dialect.ts): transactions and single writes of one event-loop
 * turn share one COMMIT. What a caller must still be able to rely on: when its promise resolves, its
 * writes are committed (another connection sees them); a transaction that fails takes only its own
 * writes with it; and a read never hands out data that is not committed yet.
 */
import fs, { mkdtempSync, rmSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStore, DuplicateKeyError, type Repos, type Store } from '../../src/store/index.js';

const CONCURRENT = 40;

describe('SQLite group commit', () => {
  let dir: string;
  let store: Store;
  let observer: Database.Database;
  let seq = 0;
  const uid = (p: string) => `${p}_${process.pid}_${++seq}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'group-commit-'));
    const file = join(dir, 'ledger.db');
    store = await createStore({ url: `sqlite:${file}` });
    // A second, independent connection: it only ever sees committed data.
    observer = new Database(file, { readonly: true });
  });

  afterAll(async () => {
    observer?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const committed = (requestId: string): boolean =>
    observer.prepare('select 1 from refunds where request_id = ?').get(requestId) !== undefined;

  const refund = (requestId: string) => ({
    requestId,
    paymentIntentId: 'pi_group',
    amount: 100,
    status: 'queued' as const,
    mode: 'async' as const,
  });

  it('every concurrent transaction is committed by the time its promise resolves', async () => {
    const ids = Array.from({ length: CONCURRENT }, () => uid('req'));
    const seenAtResolve = await Promise.all(
      ids.map((id) =>
        store
          .transaction(async (tx) => {
            await tx.refunds.insert(refund(id));
            await tx.outbox.add({
              destination: 'q',
              routingKey: 'q',
              messageId: `${id}#accept`,
              payload: { request_key: id },
            });
          })
          .then(() => committed(id)),
      ),
    );
    expect(seenAtResolve).toEqual(ids.map(() => true));
  });

  it('a plain write outside a transaction is committed when it resolves', async () => {
    const ids = Array.from({ length: CONCURRENT }, () => uid('plain'));
    const seen = await Promise.all(
      ids.map((id) => store.refunds.insert(refund(id)).then(() => committed(id))),
    );
    expect(seen).toEqual(ids.map(() => true));
  });

  it('a transaction that throws rolls back only its own writes; the others of the same turn commit', async () => {
    const ok = Array.from({ length: 10 }, () => uid('ok'));
    const doomed = uid('doomed');
    const results = await Promise.allSettled([
      ...ok.map((id) => store.transaction((tx) => tx.refunds.insert(refund(id)))),
      store.transaction(async (tx) => {
        await tx.refunds.insert(refund(doomed));
        throw new Error('changed my mind');
      }),
    ]);
    expect(results.slice(0, ok.length).every((r) => r.status === 'fulfilled')).toBe(true);
    expect(results.at(-1)).toMatchObject({ status: 'rejected', reason: { message: 'changed my mind' } });
    expect(ok.map(committed)).toEqual(ok.map(() => true));
    expect(committed(doomed)).toBe(false);
    expect(await store.refunds.get(doomed)).toBeNull();
  });

  it('a duplicate key in one transaction fails that one alone', async () => {
    const taken = uid('taken');
    await store.refunds.insert(refund(taken));
    const fresh = uid('fresh');
    const [dup, good] = await Promise.allSettled([
      store.transaction(async (tx) => {
        await tx.outbox.add({ destination: 'q', routingKey: 'q', messageId: `${taken}#x`, payload: {} });
        await tx.refunds.insert(refund(taken));
      }),
      store.transaction((tx) => tx.refunds.insert(refund(fresh))),
    ]);
    expect(dup).toMatchObject({ status: 'rejected' });
    expect((dup as PromiseRejectedResult).reason).toBeInstanceOf(DuplicateKeyError);
    expect(good).toMatchObject({ status: 'fulfilled' });
    expect(committed(fresh)).toBe(true);
    // The failed transaction's outbox row went with it.
    const outboxRow = observer.prepare('select 1 from outbox where message_id = ?').get(`${taken}#x`);
    expect(outboxRow).toBeUndefined();
  });

  it('a read made while writes are pending only answers once they are committed', async () => {
    const id = uid('pending');
    const write = store.transaction((tx) => tx.refunds.insert(refund(id)));
    // Same turn: the read runs after the write on the one connection, before anything committed.
    const read = store.refunds.get(id).then((r) => ({ found: r !== null, committedThen: committed(id) }));
    const [, seen] = await Promise.all([write, read]);
    expect(seen).toEqual({ found: true, committedThen: true });
  });

  it('a transaction queued behind one that held the connection for long still commits', async () => {
    // The slow one pushes its group past the age limit, so that group commits early and the next
    // transaction opens a new group while the first group's scheduled commit is still pending.
    const [fast, slow, next] = [uid('fast'), uid('slow'), uid('next')];
    const spin = (ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until) {
        // hold the event loop, as a long synchronous statement would
      }
    };
    await Promise.all([
      store.transaction((tx) => tx.refunds.insert(refund(fast))),
      store.transaction(async (tx) => {
        await tx.refunds.insert(refund(slow));
        spin(30);
      }),
      store.transaction((tx) => tx.refunds.insert(refund(next))),
    ]);
    expect([fast, slow, next].map(committed)).toEqual([true, true, true]);
  });

  it('a lone transaction still commits on its own', async () => {
    const id = uid('lone');
    await store.transaction((tx) => tx.refunds.insert(refund(id)));
    expect(committed(id)).toBe(true);
  });

  // Every SQLite transaction's repositories run on one handle bound to whichever transaction holds the
  // connection. Used after its transaction ended, with none open, it must refuse, not write outside any.
  it('repositories kept after their transaction ended refuse to run', async () => {
    let kept: Repos | undefined;
    await store.transaction(async (tx) => {
      kept = tx;
    });
    const late = uid('late');
    await expect(kept!.refunds.insert(refund(late))).rejects.toThrow(/outside its transaction/);
    expect(committed(late)).toBe(false);
    // The store itself is unharmed.
    const after = uid('after');
    await store.transaction((tx) => tx.refunds.insert(refund(after)));
    expect(committed(after)).toBe(true);
  });
});

/**
 * Durability without blocking the event loop: SQLite runs with synchronous=NORMAL and the dialect
 * fdatasyncs the WAL on the thread pool after each group's COMMIT. fs.fdatasync is intercepted here
 * (syncBuiltinESMExports makes the dialect's `import { fdatasync }` see the replacement) so the test
 * decides when the disk "answers".
 */
describe('SQLite durable commit off the event loop', () => {
  type Pending = { fd: number; done: (err: NodeJS.ErrnoException | null) => void };
  const realFdatasync = fs.fdatasync;
  let dir: string;
  let file: string;
  let store: Store;
  let held: Pending[] = [];
  let hold = false;
  let failNext: NodeJS.ErrnoException | null = null;
  let seq = 0;
  const uid = (p: string) => `${p}_${process.pid}_${++seq}`;
  const refund = (requestId: string) => ({
    requestId,
    paymentIntentId: 'pi_wal',
    amount: 100,
    status: 'queued' as const,
    mode: 'async' as const,
  });
  const tick = () => new Promise((r) => setTimeout(r, 20));
  const release = () => {
    const all = held;
    held = [];
    for (const p of all) realFdatasync(p.fd, p.done);
  };

  beforeAll(async () => {
    (fs as { fdatasync: typeof fs.fdatasync }).fdatasync = ((fd: number, cb: Pending['done']) => {
      if (failNext) {
        const err = failNext;
        failNext = null;
        setImmediate(() => cb(err));
      } else if (hold) held.push({ fd, done: cb });
      else realFdatasync(fd, cb);
    }) as typeof fs.fdatasync;
    syncBuiltinESMExports();
    dir = mkdtempSync(join(tmpdir(), 'wal-sync-'));
    file = join(dir, 'ledger.db');
    store = await createStore({ url: `sqlite:${file}` });
  });

  afterAll(async () => {
    hold = false;
    release();
    await store?.close();
    (fs as { fdatasync: typeof fs.fdatasync }).fdatasync = realFdatasync;
    syncBuiltinESMExports();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the file is in WAL mode, which the dialect’s sync of the -wal file relies on', () => {
    const db = new Database(file, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      db.close();
    }
  });

  it('a write resolves only after the WAL sync that follows its COMMIT has returned', async () => {
    hold = true;
    const id = uid('held');
    let resolved = false;
    const write = store.refunds.insert(refund(id)).then(() => {
      resolved = true;
    });
    await tick();
    // Committed (another connection would see it) but not yet on disk: the caller has not been told.
    expect(held.length).toBeGreaterThan(0);
    expect(resolved).toBe(false);
    hold = false;
    release();
    await write;
    expect(resolved).toBe(true);
  });

  it('a read that saw a commit whose sync is still running answers only after that sync', async () => {
    hold = true;
    const id = uid('seen');
    const write = store.refunds.insert(refund(id));
    await tick(); // committed, sync held
    let answered: boolean | null = null;
    const read = store.refunds.get(id).then((r) => {
      answered = r !== null;
    });
    await tick();
    expect(answered).toBeNull();
    hold = false;
    release();
    await Promise.all([write, read]);
    expect(answered).toBe(true);
  });

  it('commits made while a sync runs share the next one', async () => {
    hold = true;
    const first = store.refunds.insert(refund(uid('a')));
    await tick();
    expect(held).toHaveLength(1);
    const more = Array.from({ length: 20 }, (_, i) => store.refunds.insert(refund(uid(`b${i}`))));
    await tick();
    // The 20 later writes committed in their own groups, but only one sync is running at a time.
    expect(held).toHaveLength(1);
    hold = false;
    release();
    await first;
    await Promise.all(more);
  });

  it('a failed sync fails the write and every later use of the store, instead of calling anything durable', async () => {
    const eio = Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', errno: -5 });
    failNext = eio;
    await expect(store.refunds.insert(refund(uid('lost')))).rejects.toMatchObject({ code: 'EIO' });
    await expect(store.ping()).rejects.toMatchObject({ code: 'EIO' });
    await expect(store.refunds.insert(refund(uid('after')))).rejects.toMatchObject({ code: 'EIO' });
  });
});
