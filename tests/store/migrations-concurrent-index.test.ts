import { expect, it } from 'vitest';
import { createStore } from '../../src/store/index.js';
import { buildMigrations } from '../../src/store/migrations.js';
import type { StoreOptions } from '../../src/store/index.js';
import { captureLogger } from '../helpers/log-capture.js';
import { describePostgres, kyselyMigrateTo, uid } from './harness.js';
import { backToBefore, connect, query, refundRow } from './pg-support.js';

/**
 * PostgreSQL: the migrations that build an index on a table that may hold data (0002, 0004, 0007–0009) build it
 * CONCURRENTLY, outside their transaction, so a large ledger's refund accepts, outbox rows and webhooks keep being
 * written while a new version starts. These tests look at what the database shows (locks, waits, pg_index, the
 * bookkeeping) while and after such a migration runs.
 */

const applied = async (options: StoreOptions) =>
  (await query<{ name: string }>(options, 'select name from kysely_migration order by name')).map(
    (r) => r.name,
  );

/** Every index of the schema with its definition (schema name taken out) and whether it is valid. */
async function indexes(options: StoreOptions): Promise<{ name: string; def: string; valid: boolean }[]> {
  const rows = await query<{ name: string; def: string; valid: boolean }>(
    options,
    `select c.relname as name, pg_get_indexdef(i.indexrelid) as def, i.indisvalid as valid
     from pg_index i join pg_class c on c.oid = i.indexrelid join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = $1 order by c.relname`,
    [options.schema],
  );
  return rows.map((r) => ({ ...r, def: r.def.replaceAll(`${options.schema}.`, '') }));
}

/** The sessions `blocker` holds up (waiting for one of its locks or for its transaction to end). */
async function waitingFor(options: StoreOptions, blocker: number): Promise<number[]> {
  for (let i = 0; i < 400; i++) {
    const rows = await query<{ pid: number }>(
      options,
      'select pid from pg_stat_activity where $1 = any(pg_blocking_pids(pid))',
      [blocker],
    );
    if (rows.length > 0) return rows.map((r) => r.pid);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no session waited for session ${blocker}`);
}

/** The lock modes session `pid` holds or waits for on table `table`. */
async function tableLocks(options: StoreOptions, pid: number, table: string): Promise<string[]> {
  const rows = await query<{ mode: string }>(
    options,
    `select l.mode from pg_locks l join pg_class c on c.oid = l.relation
     join pg_namespace n on n.oid = c.relnamespace
     where l.pid = $1 and c.relname = $2 and n.nspname = $3 order by l.mode`,
    [pid, table, options.schema],
  );
  return rows.map((r) => r.mode);
}

/**
 * Runs `statement` on a connection of its own and returns the sessions it was seen waiting for (pg_blocking_pids,
 * looked at until it is done): none when nothing held it up.
 */
async function heldUp(options: StoreOptions, statement: string): Promise<number[]> {
  const client = await connect(options);
  try {
    let done = false;
    const running = client.query(statement).finally(() => (done = true));
    const seen: number[] = [];
    while (!done) {
      const rows = await query<{ blockers: number[] }>(options, 'select pg_blocking_pids($1) as blockers', [
        client.pid,
      ]);
      seen.push(...rows[0]!.blockers);
      await new Promise((r) => setTimeout(r, 20));
    }
    await running;
    return seen;
  } finally {
    await client.end();
  }
}

/** Migrates `options`' schema, made if missing, as versions before concurrent index builds did (kyselyMigrateTo). */
async function migratePlainly(options: StoreOptions, target: string | 'latest'): Promise<void> {
  await query(options, `create schema if not exists "${options.schema}"`);
  await kyselyMigrateTo(options, target);
}

describePostgres('migrations build indexes concurrently', (h) => {
  it('an index build lets writes to its table through: no SHARE lock, an insert meanwhile is not held up', async () => {
    const options = h.newDatabase();
    await (await h.open(options)).close();
    // The next start runs 0009, which builds refunds_in_flight_idx on a refunds table holding rows.
    await backToBefore(options, '0009', ['refunds_in_flight_idx']);
    for (let i = 0; i < 20; i++) await query(options, refundRow(uid('old')));
    // A refund accept in flight: its transaction has written to refunds and is not committed yet. A build (plain or
    // concurrent) waits for it; what matters is what happens to the writes that come after.
    const accept = await connect(options);
    await accept.query('begin');
    await accept.query(refundRow('order-in-flight'));
    let upgraded = false;
    const upgrading = createStore(options).then(async (s) => {
      upgraded = true;
      await s.close();
    });
    try {
      const [migrating] = await waitingFor(options, accept.pid);
      expect(await tableLocks(options, migrating!, 'refunds')).not.toContain('ShareLock');

      // Another refund accept meanwhile: it is written at once, never waiting for the migration's locks.
      expect(await heldUp(options, refundRow('order-next'))).toEqual([]);
      // The build is still waiting for the first accept: the insert did not get through by its end.
      expect(upgraded).toBe(false);
      await accept.query('commit');
    } finally {
      await accept.end();
      await upgrading.catch(() => undefined);
    }
    await upgrading;
    expect(await applied(options)).toContain('0009_refunds_in_flight_idx');
    expect((await indexes(options)).find((i) => i.name === 'refunds_in_flight_idx')).toMatchObject({
      valid: true,
    });
    const rows = await query<{ n: number }>(
      options,
      "select count(*)::int as n from refunds where request_id in ('order-in-flight', 'order-next')",
    );
    expect(rows[0]!.n).toBe(2);
  });

  it('dropping an index a new one replaces lets reads and writes of its table through', async () => {
    const options = h.newDatabase();
    await (await h.open(options)).close();
    // The next start runs 0004: it builds outbox_unsent_idx, then drops outbox_pending_idx, which it replaces.
    await migratePlainly(options, '0003_drop_unused_owner_idx');
    const outboxRow = (id: string) =>
      `insert into outbox (destination, message_id, payload, created_at, available_at)
       values ('stripe_refund_requests', '${id}', '{}', now(), now())`;
    for (let i = 0; i < 20; i++) await query(options, outboxRow(uid('old')));
    // The outbox relay reading in a transaction: a drop (plain or concurrent) waits for it to end.
    const relay = await connect(options);
    await relay.query('begin');
    await relay.query('select count(*) from outbox where sent_at is null');
    const upgrading = createStore(options).then((s) => s.close());
    try {
      const [migrating] = await waitingFor(options, relay.pid);
      expect(await tableLocks(options, migrating!, 'outbox')).not.toContain('AccessExclusiveLock');
      // Reads and writes of the outbox meanwhile go through.
      expect(
        await heldUp(options, 'select id from outbox where sent_at is null order by id limit 5'),
      ).toEqual([]);
      expect(await heldUp(options, outboxRow('order-1#accepted'))).toEqual([]);
      await relay.query('commit');
    } finally {
      await relay.end();
      await upgrading.catch(() => undefined);
    }
    await upgrading;
    const names = (await indexes(options)).map((i) => i.name);
    expect(names).toContain('outbox_unsent_idx');
    expect(names).not.toContain('outbox_pending_idx');
    expect(await applied(options)).toEqual(Object.keys(buildMigrations('postgres')).sort());
  });

  it('a start killed during a build leaves it unrecorded; the next start drops the INVALID index and builds it again', async () => {
    const options = h.newDatabase();
    await (await h.open(options)).close();
    await backToBefore(options, '0009', ['refunds_in_flight_idx']);
    await query(options, refundRow(uid('old')));
    // Holds the build up (it waits for this transaction), so it can be killed mid-way.
    const accept = await connect(options);
    await accept.query('begin');
    await accept.query(refundRow('order-in-flight'));
    const upgrading = createStore(options);
    // Handled below; meanwhile a rejection must not count as unhandled.
    upgrading.catch(() => undefined);
    let failed: unknown;
    try {
      const [migrating] = await waitingFor(options, accept.pid);
      // The process dies (or its connection drops) mid-build: its session ends with it.
      await query(options, 'select pg_terminate_backend($1)', [migrating]);
      failed = await upgrading.then(
        (s) => s.close(),
        (e: unknown) => e,
      );
      await accept.query('commit');
    } finally {
      await accept.end();
    }
    expect(failed).toBeInstanceOf(Error);
    // What a dead build leaves behind: the index, not valid, and 0009 not recorded as applied.
    expect((await indexes(options)).find((i) => i.name === 'refunds_in_flight_idx')).toMatchObject({
      valid: false,
    });
    expect(await applied(options)).not.toContain('0009_refunds_in_flight_idx');

    await (await h.open(options)).close();
    expect(await applied(options)).toContain('0009_refunds_in_flight_idx');
    const fresh = h.newDatabase();
    await (await h.open(fresh)).close();
    expect(await indexes(options)).toEqual(await indexes(fresh));
  });

  it('comes up beside a process waiting for the migration lock inside pg_advisory_lock (a version before this runner)', async () => {
    const options = h.newDatabase();
    await (await h.open(options)).close();
    await backToBefore(options, '0009', ['refunds_in_flight_idx']);
    await query(options, refundRow(uid('old')));
    const accept = await connect(options);
    await accept.query('begin');
    await accept.query(refundRow('order-in-flight'));
    const { logger, lines } = captureLogger('info');
    const upgrading = createStore({ ...options, logger }).then((s) => s.close());
    // Kysely's migrator waits for its lock inside `select pg_advisory_lock(...)`, holding a snapshot the build waits
    // for: each waits for the other, and PostgreSQL ends one of them (deadlock_detected).
    const older = await connect(options);
    let olderOutcome: unknown;
    let waiting: Promise<unknown> | undefined;
    try {
      const [migrating] = await waitingFor(options, accept.pid);
      waiting = older
        .query('select pg_advisory_lock(3853314791062309107); select pg_advisory_unlock(3853314791062309107)')
        .then(
          () => 'got the lock',
          (e: unknown) => e,
        );
      expect(await waitingFor(options, migrating!)).toContain(older.pid);
      // Past the older process's own deadlock check (deadlock_timeout, 1 s), so it is the build that finds the
      // deadlock once it waits for the older process.
      await new Promise((r) => setTimeout(r, 1_500));
      await accept.query('commit');
      olderOutcome = await waiting;
    } finally {
      await accept.end();
      await waiting;
      await older.end();
      await upgrading.catch(() => undefined);
    }
    await upgrading;
    expect(await applied(options)).toEqual(Object.keys(buildMigrations('postgres')).sort());
    expect((await indexes(options)).every((i) => i.valid)).toBe(true);
    if (olderOutcome === 'got the lock') {
      // The build lost the deadlock, left an INVALID index, and its migration was tried again: dropped, built again.
      const messages = lines.map((l) => JSON.parse(l) as { msg: string; code?: string });
      expect(messages).toContainEqual(expect.objectContaining({ code: '40P01' }));
      expect(messages.map((m) => m.msg)).toContain(
        'store migration dropping an invalid index an earlier build left',
      );
    }
  });

  it('two processes starting together apply each migration once, and both come up', async () => {
    const options = h.newDatabase();
    await (await h.open(options)).close();
    await backToBefore(options, '0007', [
      'webhook_events_applied_idx',
      'payments_customer_email_idx',
      'refunds_in_flight_idx',
    ]);
    const logs = [captureLogger('info'), captureLogger('info')];
    const stores = await Promise.all(logs.map(({ logger }) => h.open({ ...options, logger })));
    expect(stores).toHaveLength(2);
    const appliedBy = logs.flatMap(({ lines }) =>
      lines
        .map((l) => JSON.parse(l) as { msg: string; migration?: string })
        .filter((l) => l.msg === 'store migration applied')
        .map((l) => l.migration),
    );
    expect(appliedBy.sort()).toEqual([
      '0007_webhook_events_applied_idx',
      '0008_payments_customer_email_idx',
      '0009_refunds_in_flight_idx',
      '0010_idempotency_claim_token',
      '0011_refunds_http_request_id',
    ]);
    expect(await applied(options)).toEqual(Object.keys(buildMigrations('postgres')).sort());
    expect((await indexes(options)).every((i) => i.valid)).toBe(true);
  });

  it('ends with the very indexes the plain migrations (each whole in one transaction) give', async () => {
    const plain = h.newDatabase();
    await migratePlainly(plain, 'latest');
    // A database made by an earlier version (0001 applied), upgraded: 0002–0009 build and drop concurrently.
    const upgraded = h.newDatabase();
    await migratePlainly(upgraded, '0001_initial');
    const { logger, lines } = captureLogger('info');
    await (await h.open({ ...upgraded, logger })).close();
    const built = lines.filter((l) => l.includes('store migration building an index concurrently'));
    expect(built).toHaveLength(5);
    // A new database: its tables are new, its indexes built plainly.
    const fresh = h.newDatabase();
    await (await h.open(fresh)).close();

    const want = await indexes(plain);
    expect(want.length).toBeGreaterThan(10);
    expect(await indexes(upgraded)).toEqual(want);
    expect(await indexes(fresh)).toEqual(want);
    expect(await applied(upgraded)).toEqual(await applied(plain));
    expect(await applied(fresh)).toEqual(await applied(plain));
  });
});
