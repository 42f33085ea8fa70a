/**
 * The relay claims waiting outbox rows many times a second, while sent rows are kept for a week. The
 * claim must read the rows that wait, not walk every sent row kept (it did, on both databases, until
 * migration 0004): checked on each database's own query plan after filling the table with sent rows.
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
import pg from 'pg';
import { expect, it } from 'vitest';
import type { Database as Schema } from '../../src/store/database.js';
import { claimBatchQuery } from '../../src/store/outbox-repo.js';
import { PG_URL, describeStore } from './harness.js';

const SENT_ROWS = 20_000;
const WAITING = ['w1', 'w2', 'w3'];

/** Compiles queries for one dialect without a connection. */
function compiler(dialect: 'sqlite' | 'postgres'): Kysely<Schema> {
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

describeStore('outbox claim plan', (h) => {
  it('claims the waiting rows through the unsent-rows index, not by walking the sent ones', async () => {
    const options = h.newDatabase();
    const store = await h.open(options);
    const now = new Date();
    const at = now.toISOString();
    const claim = claimBatchQuery(compiler(h.dialect), h.dialect, 200, at, 30_000).compile();

    let plan: string;
    if (h.dialect === 'sqlite') {
      const db = new Database(options.url.slice('sqlite:'.length));
      try {
        db.prepare(
          `with recursive n(i) as (select 1 union all select i + 1 from n where i < ${SENT_ROWS})
           insert into outbox (destination, message_id, payload, created_at, available_at, sent_at)
           select 'q', 'sent-' || i, '{}', @at, @at, @at from n`,
        ).run({ at });
        plan = db
          .prepare(`explain query plan ${claim.sql}`)
          .all(...(claim.parameters as unknown[]))
          .map((r) => (r as { detail: string }).detail)
          .join('\n');
      } finally {
        db.close();
      }
    } else {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      try {
        await client.query(`set search_path to "${options.schema!}"`);
        await client.query(
          `insert into outbox (destination, message_id, payload, created_at, available_at, sent_at)
           select 'q', 'sent-' || i, '{}', $1, $1, $1 from generate_series(1, ${SENT_ROWS}) i`,
          [at],
        );
        await client.query('analyze outbox');
        const res = await client.query<{ 'QUERY PLAN': unknown }>(
          `explain (format json) ${claim.sql}`,
          claim.parameters as unknown[],
        );
        plan = JSON.stringify(res.rows[0]!['QUERY PLAN']);
      } finally {
        await client.end();
      }
    }
    for (const id of WAITING) await store.outbox.add({ destination: 'q', messageId: id, payload: id });

    expect(plan).toContain('outbox_unsent_idx');
    if (h.dialect === 'sqlite') expect(plan.split('\n')).not.toContain('SCAN outbox');
    else expect(plan).not.toContain('"Seq Scan"');

    // And it still claims exactly the waiting rows, oldest first.
    const claimed = await store.outbox.claimBatch(200, new Date(now.getTime() + 1_000));
    expect(claimed.map((m) => m.messageId)).toEqual(WAITING);
  });
});
