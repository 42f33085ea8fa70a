/**
 * On PostgreSQL the query templates run as named prepared statements (src/store/postgres.ts): each
 * pooled connection parses and plans a template's SQL once. Checked on one connection through
 * PostgreSQL's own pg_prepared_statements view; anything that is not a template stays unprepared.
 */
import { Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/store/database.js';
import { createPostgresDialect } from '../../src/store/postgres.js';
import { preparedStatementName, queryTemplate } from '../../src/store/query-template.js';
import { PG_URL, silentLogger, skipPostgres } from './harness.js';

describe.skipIf(skipPostgres)('PostgreSQL prepared statements for query templates', () => {
  let db: Kysely<Database>;
  const byId = queryTemplate<{ n: number }, { n: number }>('test.prepared', ['n'], (k, p) =>
    k.selectNoFrom((eb) => eb.val(p('n')).as('n')),
  );

  beforeAll(() => {
    // One connection, so the view below is the session the templates ran on.
    const { dialect } = createPostgresDialect({
      connectionString: PG_URL,
      poolSize: 1,
      connectTimeoutMs: 5_000,
      logger: silentLogger,
    });
    db = new Kysely<Database>({ dialect });
  });

  afterAll(async () => {
    await db?.destroy();
  });

  it('prepares a template once per connection and answers each run with its own values', async () => {
    const answers = [];
    for (const n of [1, 2, 3]) answers.push((await byId.first(db, 'postgres', { n }))?.n);
    expect(answers.map(Number)).toEqual([1, 2, 3]);
    const compiledSql = db.selectNoFrom((eb) => eb.val('x').as('n')).compile().sql;
    const name = preparedStatementName(compiledSql);
    expect(name).toMatch(/^tpl_[0-9a-f]{32}$/);
    const prepared = await sql<{ name: string; statement: string }>`
      select name, statement from pg_prepared_statements`.execute(db);
    expect(prepared.rows).toEqual([{ name, statement: compiledSql }]);
  });

  it('leaves other statements unprepared', async () => {
    const names = async () =>
      (await sql<{ name: string }>`select name from pg_prepared_statements`.execute(db)).rows.map(
        (r) => r.name,
      );
    const before = await names();
    await sql`select 41 + ${1} as n`.execute(db);
    expect(await names()).toEqual(before);
  });
});
