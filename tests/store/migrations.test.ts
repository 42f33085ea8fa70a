import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createStore } from '../../src/store/index.js';
import type { Store, StoreOptions } from '../../src/store/index.js';
import { PG_URL, describeStore, silentLogger, uid } from './harness.js';

/** Reads the migration bookkeeping straight from the database, bypassing the store. */
async function appliedMigrations(options: StoreOptions): Promise<string[]> {
  if (options.url.startsWith('sqlite:')) {
    const db = new Database(options.url.slice('sqlite:'.length), { readonly: true });
    try {
      return (db.prepare('select name from kysely_migration order by name').all() as { name: string }[]).map(
        (r) => r.name,
      );
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>(
      `select name from "${options.schema}".kysely_migration order by name`,
    );
    return rows.map((r) => r.name);
  } finally {
    await client.end();
  }
}

/** Runs one statement straight on the database, as an operator (or an earlier version of the service) would. */
async function runSql(options: StoreOptions, statement: string): Promise<void> {
  if (options.url.startsWith('sqlite:')) {
    const db = new Database(options.url.slice('sqlite:'.length));
    try {
      db.prepare(statement).run();
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`SET search_path TO "${options.schema}"; ${statement}`);
  } finally {
    await client.end();
  }
}

const payment = (id: string) =>
  ({ id, kind: 'payment_intent', amount: 100, currency: 'usd', status: 'succeeded' }) as const;

describeStore('store lifecycle and migrations', (h) => {
  it('createStore twice on the same database keeps data and migrates once', async () => {
    const options = h.newDatabase();
    const first = await h.open(options);
    await first.payments.insert(payment('pi_keep'));
    await first.close();

    const second = await h.open(options);
    expect((await second.payments.get('pi_keep'))?.amount).toBe(100);
    const third = await h.open(options);
    expect((await third.payments.get('pi_keep'))?.amount).toBe(100);
    expect(await appliedMigrations(options)).toEqual([
      '0001_initial',
      '0002_refunds_reserved_covering_idx',
      '0003_drop_unused_owner_idx',
      '0004_outbox_unsent_idx',
      '0005_pg_refunds_committed_fn',
      '0006_forget_customer_emails',
    ]);
  });

  it('several processes starting at once on an empty database all come up', async () => {
    const options = h.newDatabase();
    const stores = await Promise.all(Array.from({ length: 4 }, () => h.open(options)));
    await stores[0]!.payments.insert(payment('pi_shared'));
    for (const s of stores) expect((await s.payments.get('pi_shared'))?.id).toBe('pi_shared');
    expect(await appliedMigrations(options)).toEqual([
      '0001_initial',
      '0002_refunds_reserved_covering_idx',
      '0003_drop_unused_owner_idx',
      '0004_outbox_unsent_idx',
      '0005_pg_refunds_committed_fn',
      '0006_forget_customer_emails',
    ]);
  });

  it('forgets the customer e-mail addresses earlier versions kept in the ledger', async () => {
    const options = h.newDatabase();
    const first = await h.open(options);
    await first.payments.insert(payment('pi_other'));
    await first.close();
    // A checkout session's row as a version before 0006 wrote it, on a database not migrated to 0006 yet.
    await runSql(options, "delete from kysely_migration where name = '0006_forget_customer_emails'");
    await runSql(
      options,
      `insert into payments (id, kind, owner, amount, currency, status, metadata, customer_email, created_at, updated_at)
       values ('cs_old', 'checkout_session', 'shop', 1200, 'usd', 'complete', '{"order":"7"}',
               'kim.old.2291@example.com', '2025-01-01T00:00:00.000Z', '2025-01-01T00:00:00.000Z')`,
    );
    const upgraded = await h.open(options);
    const row = await upgraded.payments.get('cs_old');
    expect(row).toMatchObject({ owner: 'shop', amount: 1200, status: 'complete', metadata: { order: '7' } });
    expect(row!.customerEmail).toBeNull();
    expect((await upgraded.payments.get('pi_other'))?.amount).toBe(100);
    expect(await appliedMigrations(options)).toContain('0006_forget_customer_emails');
  });

  it('reports its dialect, answers ping, and closes idempotently', async () => {
    const store = await h.open(h.newDatabase());
    expect(store.dialect).toBe(h.dialect);
    await expect(store.ping()).resolves.toBeUndefined();
    await store.close();
    await store.close();
    await expect(store.ping()).rejects.toThrow();
  });

  it('rolls a transaction back when its function throws, and returns its value otherwise', async () => {
    const store = await h.open(h.newDatabase());
    await expect(
      store.transaction(async (tx) => {
        await tx.payments.insert(payment('pi_rollback'));
        throw new Error('nope');
      }),
    ).rejects.toThrow('nope');
    expect(await store.payments.get('pi_rollback')).toBeNull();
    expect(await store.transaction(async (tx) => (await tx.payments.insert(payment('pi_commit'))).id)).toBe(
      'pi_commit',
    );
    expect(await store.payments.get('pi_commit')).not.toBeNull();
  });

  if (h.dialect === 'postgres')
    it('opens no more PostgreSQL connections than its pool size (DATABASE_POOL_SIZE)', async () => {
      const store = await h.open({ ...h.newDatabase(), poolSize: 2 });
      let inside = 0;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const held = Array.from({ length: 3 }, () =>
        store.transaction(async (tx) => {
          await tx.payments.get('pi_none');
          inside += 1;
          await gate;
        }),
      );
      try {
        await new Promise((r) => setTimeout(r, 200));
        expect(inside).toBe(2); // the third waits for a connection
      } finally {
        release(); // also when the check fails, so the store can close
      }
      await Promise.all(held);
      expect(inside).toBe(3);
    });

  if (h.dialect === 'postgres')
    it('keeps each schema to itself on every pooled connection', async () => {
      const a = await h.open({ ...h.newDatabase(), poolSize: 3 });
      const bOptions = h.newDatabase();
      const b = await h.open({ ...bOptions, poolSize: 3 });
      await a.payments.insert({ ...payment('pi_same'), amount: 111 });
      await b.payments.insert({ ...payment('pi_same'), amount: 222 });
      // Hold more transactions than the pool has connections so every connection gets used.
      const reads = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          (i % 2 ? b : a).transaction(async (tx) => {
            const p = await tx.payments.get('pi_same');
            await new Promise((r) => setTimeout(r, 5));
            return [i % 2, p?.amount];
          }),
        ),
      );
      for (const [which, amount] of reads) expect(amount).toBe(which ? 222 : 111);

      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        const { rows } = await client.query<{ table_name: string }>(
          'select table_name from information_schema.tables where table_schema = $1 order by table_name',
          [bOptions.schema],
        );
        expect(rows.map((r) => r.table_name)).toEqual([
          'api_keys',
          'idempotency_keys',
          'kysely_migration',
          'kysely_migration_lock',
          'outbox',
          'payments',
          'refunds',
          'webhook_events',
        ]);
      } finally {
        await client.end();
      }
    });

  if (h.dialect === 'postgres')
    it('rejects an unsafe schema name', async () => {
      await expect(
        createStore({ url: PG_URL, schema: 'x"; drop table y; --', logger: silentLogger }),
      ).rejects.toThrow(/schema name/);
    });
});

describe('store on SQLite specifics', () => {
  const dir = mkdtempSync(join(tmpdir(), 'store-sqlite-'));
  const stores: Store[] = [];
  afterAll(async () => {
    await Promise.allSettled(stores.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the data folder, and leaves the file in WAL mode', async () => {
    const path = join(dir, 'nested', 'deeper', 'payments.db');
    const store = await createStore({
      url: `sqlite:${path}`,
      logger: silentLogger,
      sqliteSynchronous: 'NORMAL',
    });
    stores.push(store);
    expect(existsSync(path)).toBe(true);
    const raw = new Database(path, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      raw.close();
    }
  });

  it('works in memory', async () => {
    const store = await createStore({ url: 'sqlite::memory:', logger: silentLogger });
    stores.push(store);
    await store.payments.insert(payment(uid('pi')));
    expect(await store.refunds.sumCommitted('pi_none')).toBe(0);
  });

  it('refuses the PostgreSQL-only schema option', async () => {
    await expect(
      createStore({ url: `sqlite:${join(dir, 's.db')}`, schema: 'x', logger: silentLogger }),
    ).rejects.toThrow(/PostgreSQL/);
  });
});

describe('store on an unreachable PostgreSQL', () => {
  it('rejects createStore instead of hanging', async () => {
    await expect(
      createStore({
        url: 'postgres://postgres@127.0.0.1:1/test',
        logger: silentLogger,
        connectTimeoutMs: 2_000,
      }),
    ).rejects.toThrow();
  });
});
