import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createStore } from '../../src/store/index.js';
import type { Store, StoreOptions } from '../../src/store/index.js';
import { buildMigrations, withOwnSchemaIntrospection } from '../../src/store/migrations.js';

export const DIALECTS = ['sqlite', 'postgres'] as const;
export type TestDialect = (typeof DIALECTS)[number];

const PG_CANDIDATES = process.env.TEST_DATABASE_URL
  ? [process.env.TEST_DATABASE_URL]
  : ['postgres://postgres@127.0.0.1:5432/test', 'postgres://root@127.0.0.1:5432/test'];

async function probe(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function findPostgres(): Promise<string | undefined> {
  for (const url of PG_CANDIDATES) if (await probe(url)) return url;
  return undefined;
}

const reachablePg = await findPostgres();
/** In CI an unreachable PostgreSQL must fail the suite, so the first candidate is used regardless. */
export const PG_URL = reachablePg ?? PG_CANDIDATES[0] ?? 'postgres://postgres@127.0.0.1:5432/test';
export const skipPostgres = reachablePg === undefined && !process.env.CI;
if (skipPostgres) {
  console.warn(
    `\n!!! PostgreSQL is unreachable (${PG_CANDIDATES.join(', ')}): SKIPPING the PostgreSQL store tests. ` +
      'Set CI=1 to make this a failure.\n',
  );
}

export const silentLogger = pino({ level: 'silent' });

export interface StoreHarness {
  readonly dialect: TestDialect;
  /** The store shared by the tests of one describe block (one database per test file and dialect). */
  readonly store: Store;
  /** Options that open the shared database again (a second connection / pool). */
  readonly options: StoreOptions;
  /** Opens another Store on the shared database; closed after the block. */
  openSibling(extra?: Partial<StoreOptions>): Promise<Store>;
  /** Options for a brand-new, empty database (temp SQLite file or new PostgreSQL schema). */
  newDatabase(): StoreOptions;
  /** Opens a Store with the given options; closed after the block. */
  open(options: StoreOptions): Promise<Store>;
}

function useHarness(dialect: TestDialect): StoreHarness {
  const tag = `${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), `store-test-${dialect}-`));
  const schemas: string[] = [];
  const opened: Store[] = [];
  let counter = 0;
  let shared: Store | undefined;

  const newDatabase = (): StoreOptions => {
    counter += 1;
    if (dialect === 'sqlite') {
      return { url: `sqlite:${join(dir, `db-${counter}.db`)}`, logger: silentLogger };
    }
    const schema = `store_test_${tag}_${counter}`;
    schemas.push(schema);
    return { url: PG_URL, schema, logger: silentLogger, connectTimeoutMs: 3_000 };
  };

  const open = async (options: StoreOptions) => {
    const store = await createStore(options);
    opened.push(store);
    return store;
  };

  const options = newDatabase();

  beforeAll(async () => {
    shared = await open(options);
  });

  afterAll(async () => {
    await Promise.allSettled(opened.map((s) => s.close()));
    if (dialect === 'postgres' && schemas.length > 0) {
      const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 });
      try {
        await client.connect();
        for (const schema of schemas) await client.query(`drop schema if exists "${schema}" cascade`);
      } catch {
        // nothing to drop when the server was never reachable
      } finally {
        await client.end().catch(() => undefined);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  return {
    dialect,
    options,
    get store() {
      if (!shared) throw new Error('store not opened (beforeAll failed?)');
      return shared;
    },
    openSibling: (extra) => open({ ...options, ...extra }),
    newDatabase,
    open,
  };
}

/** The one store suite, run once per dialect. */
export function describeStore(title: string, body: (h: StoreHarness) => void): void {
  describe.each(DIALECTS)(`${title} [%s]`, (dialect) => {
    if (dialect === 'postgres' && skipPostgres) {
      it.skip('PostgreSQL unreachable', () => undefined);
      return;
    }
    body(useHarness(dialect));
  });
}

/** A suite for PostgreSQL only (what SQLite has no counterpart of), with the same harness. */
export function describePostgres(title: string, body: (h: StoreHarness) => void): void {
  describe(`${title} [postgres]`, () => {
    if (skipPostgres) {
      it.skip('PostgreSQL unreachable', () => undefined);
      return;
    }
    body(useHarness('postgres'));
  });
}

let seq = 0;
/** Ids unique across test files and runs, so tests can share one database. */
export function uid(prefix: string): string {
  seq += 1;
  return `${prefix}_${Date.now().toString(36)}${randomBytes(3).toString('hex')}${seq}`;
}

export const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** A gate a test opens when it chooses: what waits on `gate` goes on once `open` is called. */
export function gated(): { gate: Promise<void>; open: () => void } {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  return { gate, open };
}

/** Resolves when `n` callers have arrived; makes interleavings deterministic. */
export function barrier(n: number): () => Promise<void> {
  let arrived = 0;
  let release!: () => void;
  const all = new Promise<void>((resolve) => (release = resolve));
  return () => {
    arrived += 1;
    if (arrived >= n) release();
    return all;
  };
}

/**
 * PostgreSQL: migrates `options`' schema up or down to `target` with Kysely's own migrator, each migration whole in
 * one transaction (no concurrent index builds): how versions before the service's own runner migrated, and the way
 * down, which the service never takes.
 */
export async function kyselyMigrateTo(options: StoreOptions, target: string | 'latest'): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- migrations take Kysely<any> (see buildMigrations)
  const db = new Kysely<any>({
    // Kysely's own introspection reads every schema's tables and fails on one another test file drops meanwhile.
    dialect: withOwnSchemaIntrospection(
      new PostgresDialect({
        pool: new pg.Pool({ connectionString: PG_URL, max: 1, options: `-c search_path=${options.schema}` }),
      }),
    ),
  });
  try {
    const migrations = buildMigrations('postgres');
    const migrator = new Migrator({
      db,
      provider: { getMigrations: async () => migrations },
      migrationTableSchema: options.schema!,
    });
    const { error } = await (target === 'latest' ? migrator.migrateToLatest() : migrator.migrateTo(target));
    if (error) throw error;
  } finally {
    await db.destroy();
  }
}

/** Polls `check` every 20 ms until it holds (true) or `timeoutMs` passes (false). */
export async function until(check: () => Promise<boolean> | boolean, timeoutMs = 8_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/**
 * This process's clock is `skewMs` off from now on (PostgreSQL's, on the same machine, is not). Undo with
 * vi.useRealTimers() after the test.
 */
export function skewClock(skewMs: number): void {
  const real = Date.now();
  vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
  vi.setSystemTime(real + skewMs);
}

/**
 * Takes every connection of a store's request pool (PostgreSQL): an admin session locks `table` of the harness's
 * schema, and `poolSize` calls of `wait` (each a statement on that table) hold a connection while they wait for it.
 * Answers how to end that.
 */
export async function holdEveryConnection(
  h: StoreHarness,
  table: string,
  poolSize: number,
  wait: (i: number) => Promise<unknown>,
): Promise<() => Promise<void>> {
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  const qualified = `"${h.options.schema}".${table}`;
  await admin.query('begin');
  await admin.query(`lock table ${qualified} in access exclusive mode`);
  const waiting = Array.from({ length: poolSize }, (_, i) => wait(i).catch(() => null));
  const allWaiting = await until(async () => {
    const { rows } = await admin.query<{ n: number }>(
      'select count(*)::int as n from pg_locks where relation = $1::regclass and not granted',
      [qualified],
    );
    return rows[0]!.n === poolSize;
  });
  expect(allWaiting).toBe(true);
  return async () => {
    await admin.query('rollback').catch(() => undefined);
    await Promise.all(waiting);
    await admin.end();
  };
}
