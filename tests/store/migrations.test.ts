import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { NoLedgerError, createStore } from '../../src/store/index.js';
import { buildMigrations } from '../../src/store/migrations.js';
import { describeError } from '../../src/config/start-failure.js';
import { captureLogger } from '../helpers/log-capture.js';
import type { Store, StoreOptions } from '../../src/store/index.js';
import { PG_URL, describeStore, kyselyMigrateTo, silentLogger, uid } from './harness.js';

/** Every file of `folder` with its bytes (hex), to tell whether anything was created or changed there. */
function snapshot(folder: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(folder).map((f) => [f, readFileSync(join(folder, f)).toString('hex')]),
  );
}

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

/** Takes a migrated database back to where a version before 0006 left it (0006 and what followed it not run). */
async function backToBefore0006(options: StoreOptions): Promise<void> {
  await runSql(options, "delete from kysely_migration where name >= '0006'");
  await runSql(options, 'drop index payments_customer_email_idx');
  await runSql(options, 'drop index webhook_events_applied_idx');
  await runSql(options, 'drop index refunds_in_flight_idx');
  await runSql(options, 'alter table idempotency_keys drop column claim_token');
  await runSql(options, 'alter table refunds drop column http_request_id');
}

/** PostgreSQL: resolves once a session waits for a lock the session `blocker` holds. */
async function waitForLockWait(blocker: number): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    for (let i = 0; i < 200; i++) {
      const { rows } = await client.query(
        'select pid from pg_stat_activity where $1 = any(pg_blocking_pids(pid))',
        [blocker],
      );
      if (rows.length > 0) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no session waited for a lock of session ${blocker}`);
  } finally {
    await client.end();
  }
}

/** A checkout session's row as versions before 0006 wrote it, with the customer's e-mail address. */
async function insertCheckoutWithEmail(options: StoreOptions, id: string): Promise<void> {
  await runSql(
    options,
    `insert into payments (id, kind, owner, amount, currency, status, customer_email, created_at, updated_at)
     values ('${id}', 'checkout_session', '', 700, 'usd', 'complete', 'lee.busy.7731@example.com', now(), now())`,
  );
}

/**
 * PostgreSQL: a webhook's transaction holds payment `id`'s row (FOR UPDATE) while a process starts and migrates;
 * resolves once a migration waits for that row. `release` ends the transaction; `upgrading` is the start.
 */
async function startUpgradeBehindRowLock(
  options: StoreOptions,
  id: string,
): Promise<{ upgrading: Promise<Store>; release: () => Promise<void> }> {
  const webhook = new pg.Client({ connectionString: PG_URL });
  await webhook.connect();
  await webhook.query(`SET search_path TO "${options.schema}"`);
  const { rows } = await webhook.query<{ pid: number }>('select pg_backend_pid() as pid');
  await webhook.query('begin');
  await webhook.query('select id from payments where id = $1 for update', [id]);
  const upgrading = createStore(options);
  const release = async () => {
    await webhook.query('rollback').catch(() => undefined);
    await webhook.end();
  };
  try {
    await waitForLockWait(rows[0]!.pid);
  } catch (error) {
    await release();
    await upgrading.then((s) => s.close()).catch(() => undefined);
    throw error;
  }
  // Closed once done; the test reads what it needs through its own store.
  return { upgrading: upgrading.then(async (s) => (await s.close(), s)), release };
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
      '0007_webhook_events_applied_idx',
      '0008_payments_customer_email_idx',
      '0009_refunds_in_flight_idx',
      '0010_idempotency_claim_token',
      '0011_refunds_http_request_id',
    ]);
  });

  it('existingOnly opens a ledger that is there, and refuses a database without one, creating nothing', async () => {
    const empty = h.newDatabase();
    await expect(createStore({ ...empty, existingOnly: true })).rejects.toBeInstanceOf(NoLedgerError);
    if (h.dialect === 'postgres') {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        const { rows } = await client.query('select 1 from pg_namespace where nspname = $1', [empty.schema]);
        expect(rows).toEqual([]);
      } finally {
        await client.end();
      }
    } else {
      // Not even the file: opening it to look would have made an empty database there.
      expect(existsSync(empty.url.slice('sqlite:'.length))).toBe(false);
    }

    const options = h.newDatabase();
    const first = await h.open(options);
    await first.payments.insert(payment('pi_there'));
    const reader = await h.open({ ...options, existingOnly: true });
    expect((await reader.payments.get('pi_there'))?.amount).toBe(100);
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
      '0007_webhook_events_applied_idx',
      '0008_payments_customer_email_idx',
      '0009_refunds_in_flight_idx',
      '0010_idempotency_claim_token',
      '0011_refunds_http_request_id',
    ]);
  });

  it('forgets the customer e-mail addresses earlier versions kept in the ledger', async () => {
    const options = h.newDatabase();
    const first = await h.open(options);
    await first.payments.insert(payment('pi_other'));
    await first.close();
    // A checkout session's row as a version before 0006 wrote it, on a database not migrated to 0006 yet.
    await backToBefore0006(options);
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

  it('starts on a database a newer version has migrated further, as a rolling update or a rollback needs', async () => {
    const options = h.newDatabase();
    const newer = await h.open(options);
    await newer.payments.insert(payment('pi_before'));
    await newer.close();
    // What a later version's migration leaves behind: a name this version has never heard of.
    await runSql(
      options,
      "insert into kysely_migration (name, timestamp) values ('9999_from_a_newer_version', '2099-01-01T00:00:00.000Z')",
    );
    const older = await h.open(options);
    expect((await older.payments.get('pi_before'))?.amount).toBe(100);
    await older.payments.insert(payment('pi_after'));
    expect((await older.payments.get('pi_after'))?.amount).toBe(100);
    expect(await appliedMigrations(options)).toContain('9999_from_a_newer_version');
  });

  it('refuses a database with a newer migration but without one of its own', async () => {
    const options = h.newDatabase();
    await (await h.open(options)).close();
    await runSql(options, "delete from kysely_migration where name = '0006_forget_customer_emails'");
    await runSql(
      options,
      "insert into kysely_migration (name, timestamp) values ('9999_from_a_newer_version', '2099-01-01T00:00:00.000Z')",
    );
    await expect(h.open(options)).rejects.toThrow(
      /does not know \(9999_from_a_newer_version\) but lacks 0006/,
    );
  });

  // A failed migration was logged as an error naming it ('store migration failed', with no error), and then
  // again by whoever opened the store (the process's fatal 'could not start' line), with an error that did not
  // name it.
  it('a migration that fails is one error, naming the migration and why, and no line of its own', async () => {
    const options = h.newDatabase();
    await (await h.open(options)).close();
    // 0006 runs again, on a table that lacks the column it clears.
    await backToBefore0006(options);
    await runSql(options, 'alter table payments drop column customer_email');
    const { logger, lines } = captureLogger('info');
    const failed = await h.open({ ...options, logger }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(Error);
    expect(describeError(failed)).toMatch(
      /^store migration 0006_forget_customer_emails failed \(.*customer_email/,
    );
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).not.toContain('store migration failed');
    expect(lines.filter((l) => (JSON.parse(l) as { level: number }).level >= 50)).toEqual([]);
  });

  if (h.dialect === 'postgres')
    it('commits each migration on its own: one that waits does not hold the locks of those before it', async () => {
      const options = h.newDatabase();
      // A process already serving (of the version before, say) on this database; its statements give up after 1.5 s,
      // less than a migration waits for a lock before it gives way.
      const serving = await h.open({ ...options, queryTimeoutMs: 1_500 });
      await insertCheckoutWithEmail(options, 'cs_busy');
      // Back to 0003 with the service's own down migrations, so the next start runs 0004 (which rebuilds an index
      // of the outbox, dropping one: ACCESS EXCLUSIVE on it), 0005 and 0006 (which clears cs_busy's e-mail).
      await kyselyMigrateTo(options, '0003_drop_unused_owner_idx');
      const { upgrading, release } = await startUpgradeBehindRowLock(options, 'cs_busy');
      try {
        // POST /refund-async writes an outbox row: it must not wait for 0006, nor fail.
        const row = await serving.outbox.add({
          destination: 'stripe_refund_requests',
          routingKey: 'stripe_refund_requests',
          messageId: 'order-1#accepted',
          payload: { request_key: 'order-1' },
        });
        expect(row.id).toBeGreaterThan(0);
      } finally {
        await release();
      }
      await upgrading;
      expect(await appliedMigrations(options)).toHaveLength(Object.keys(buildMigrations('postgres')).length);
      expect((await serving.payments.get('cs_busy'))?.customerEmail).toBeNull();
    });

  if (h.dialect === 'postgres')
    it('gives way when a migration waits for a lock, so requests on the tables it holds still answer', async () => {
      const options = h.newDatabase();
      const serving = await h.open({ ...options, queryTimeoutMs: 6_000 });
      await runSql(
        options,
        `insert into refunds (request_id, owner, payment_intent_id, amount, status, mode, created_at, updated_at)
         values ('order-1', '', 'pi_1', 700, 'succeeded', 'async', now(), now())`,
      );
      await insertCheckoutWithEmail(options, 'cs_busy');
      // 0003 drops an index of refunds (ACCESS EXCLUSIVE on refunds), then one of payments, which waits for the
      // webhook transaction holding a payment row.
      await kyselyMigrateTo(options, '0002_refunds_reserved_covering_idx');
      // `serving` is of this version, whose statements name the column 0010 adds (a process of the version before
      // names none of it); 0010 adds it only if it is not there.
      await runSql(options, 'alter table refunds add column http_request_id text');
      const { upgrading, release } = await startUpgradeBehindRowLock(options, 'cs_busy');
      try {
        // GET /refund-status meanwhile: answered (after the migration's lock timeout at worst), not a 503.
        expect(await serving.refunds.get('order-1')).toMatchObject({ amount: 700, status: 'succeeded' });
      } finally {
        await release();
      }
      await upgrading;
      expect(await appliedMigrations(options)).toHaveLength(Object.keys(buildMigrations('postgres')).length);
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
    it('opens while other clients create and drop schemas of their own in the same database', async () => {
      // Kysely's check for its bookkeeping tables reads every schema's catalog; a schema another client dropped
      // meanwhile failed the whole start with `schema "…" does not exist` (seen in CI, where test files drop
      // their schemas while others migrate).
      const churn = new pg.Client({ connectionString: PG_URL });
      await churn.connect();
      let stop = false;
      const churning = (async () => {
        for (let i = 0; !stop; i++) {
          const name = uid(`churn_${i}_`);
          await churn.query(`create schema "${name}"`);
          await churn.query(`create table "${name}".t (a int, b int, c int)`);
          await churn.query(`drop schema "${name}" cascade`);
          // About as often as the test files of a full run drop theirs, many times over.
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
      try {
        for (let round = 0; round < 8; round++) {
          const opened = await Promise.all(Array.from({ length: 3 }, () => h.open(h.newDatabase())));
          for (const store of opened) expect(await store.payments.get('pi_none')).toBeNull();
        }
      } finally {
        stop = true;
        await churning;
        await churn.end();
      }
    }, 60_000);

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

  // reconcile opens the ledger with existingOnly: pointed at the wrong path, it must leave what is there as it was.
  it('existingOnly refuses a path that is not there, creating neither the file nor its folder', async () => {
    const folder = join(dir, 'not-there');
    await expect(
      createStore({ url: `sqlite:${join(folder, 'payments.db')}`, logger: silentLogger, existingOnly: true }),
    ).rejects.toBeInstanceOf(NoLedgerError);
    expect(existsSync(folder)).toBe(false);
  });

  it("existingOnly refuses another application's SQLite file and leaves it byte for byte, journal mode included", async () => {
    const folder = mkdtempSync(join(dir, 'others-'));
    writeFileSync(join(folder, 'empty.db'), '');
    writeFileSync(join(folder, 'notes.txt'), 'not a database at all\n'.repeat(10));
    for (const [name, mode] of [
      ['rollback.db', 'delete'],
      ['wal.db', 'wal'],
    ] as const) {
      const other = new Database(join(folder, name));
      other.pragma(`journal_mode = ${mode}`);
      other.exec("create table notes (body text); insert into notes values ('kept')");
      other.close();
    }
    const before = snapshot(folder);
    expect(Object.keys(before).sort()).toEqual(['empty.db', 'notes.txt', 'rollback.db', 'wal.db']);
    for (const name of Object.keys(before)) {
      await expect(
        createStore({ url: `sqlite:${join(folder, name)}`, logger: silentLogger, existingOnly: true }),
      ).rejects.toBeInstanceOf(NoLedgerError);
    }
    // No -wal or -shm file beside any of them, and the same bytes: the header holds the journal mode.
    expect(snapshot(folder)).toEqual(before);
  });

  it('existingOnly opens a ledger the service closed (in WAL mode, its -wal file gone)', async () => {
    const path = join(dir, 'closed-ledger.db');
    const writer = await createStore({ url: `sqlite:${path}`, logger: silentLogger });
    await writer.payments.insert(payment('pi_closed'));
    await writer.close();
    expect(existsSync(`${path}-wal`)).toBe(false);
    const reader = await createStore({ url: `sqlite:${path}`, logger: silentLogger, existingOnly: true });
    stores.push(reader);
    expect((await reader.payments.get('pi_closed'))?.amount).toBe(100);
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
