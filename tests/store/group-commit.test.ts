/**
 * SQLite group commit (src/store/sqlite-dialect.ts): transactions and single writes of one event-loop
 * turn share one COMMIT. What a caller must still be able to rely on: when its promise resolves, its
 * writes are committed (another connection sees them); a transaction that fails takes only its own
 * writes with it; and a read never hands out data that is not committed yet.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStore, DuplicateKeyError, type Store } from '../../src/store/index.js';

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
});
