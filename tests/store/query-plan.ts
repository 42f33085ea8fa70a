/**
 * Query plans of the store's statements on each database, after filling a table with rows the statement must not
 * read: the plan tests check that the statements the service runs often find their rows through an index.
 */
import Database from 'better-sqlite3';
import {
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely';
import type { CompiledQuery } from 'kysely';
import pg from 'pg';
import { expect } from 'vitest';
import type { Database as Schema } from '../../src/store/database.js';
import type { StoreOptions } from '../../src/store/index.js';
import { PG_URL } from './harness.js';

type Dialect = 'sqlite' | 'postgres';

/** Compiles queries for one dialect without a connection. */
export function compiler(dialect: Dialect): Kysely<Schema> {
  const pgDialect = dialect === 'postgres';
  return new Kysely<Schema>({
    dialect: {
      createAdapter: () => (pgDialect ? new PostgresAdapter() : new SqliteAdapter()),
      createDriver: () => new DummyDriver(),
      createIntrospector: (db) => (pgDialect ? new PostgresIntrospector(db) : new SqliteIntrospector(db)),
      createQueryCompiler: () => (pgDialect ? new PostgresQueryCompiler() : new SqliteQueryCompiler()),
    },
  });
}

/** planAfterFilling's fill of `rows` refunds in flight (half queued, half processing), all changed at `at`. */
export function refundsInFlight(at: string, rows: number): Parameters<typeof planAfterFilling>[2] {
  return {
    table: 'refunds',
    columns: 'request_id, payment_intent_id, amount, status, mode, created_at, updated_at',
    select: `'fill-' || i, 'pi_fill', 100, case when i % 2 = 0 then 'queued' else 'processing' end, 'async', $1, $1`,
    at,
    rows,
  };
}

/**
 * Fills `table` with `fill.rows` rows made by `select` (a select list over the series `i`, with `@at` / `$1` the time),
 * then returns the plan of `query`: SQLite's EXPLAIN QUERY PLAN lines, or PostgreSQL's JSON plan.
 */
export async function planAfterFilling(
  dialect: Dialect,
  options: StoreOptions,
  fill: { table: string; columns: string; select: string; at: string; rows: number },
  query: CompiledQuery,
): Promise<string> {
  if (dialect === 'sqlite') {
    const db = new Database(options.url.slice('sqlite:'.length));
    try {
      db.prepare(
        `with recursive n(i) as (select 1 union all select i + 1 from n where i < ${fill.rows})
         insert into ${fill.table} (${fill.columns}) select ${fill.select.replaceAll('$1', '@at')} from n`,
      ).run({ at: fill.at });
      return db
        .prepare(`explain query plan ${query.sql}`)
        .all(...(query.parameters as unknown[]))
        .map((r) => (r as { detail: string }).detail)
        .join('\n');
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`set search_path to "${options.schema!}"`);
    await client.query(
      `insert into ${fill.table} (${fill.columns}) select ${fill.select} from generate_series(1, ${fill.rows}) i`,
      [fill.at],
    );
    await client.query(`analyze ${fill.table}`);
    const res = await client.query<{ 'QUERY PLAN': unknown }>(
      `explain (format json) ${query.sql}`,
      query.parameters as unknown[],
    );
    return JSON.stringify(res.rows[0]!['QUERY PLAN']);
  } finally {
    await client.end();
  }
}

export function expectNoScanOf(dialect: Dialect, plan: string, table: string): void {
  if (dialect === 'sqlite') expect(plan.split('\n')).not.toContain(`SCAN ${table}`);
  else expect(plan).not.toContain('"Seq Scan"');
}
