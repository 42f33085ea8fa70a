/**
 * Query templates (src/store/query-template.ts): a statement built with Kysely once and re-run with
 * new values must behave exactly like building it each time, and misuse must fail loudly instead of
 * freezing a value into the SQL.
 */
import Database from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database as Db } from '../../src/store/database.js';
import { queryTemplate } from '../../src/store/query-template.js';
import { buildMigrations } from '../../src/store/migrations.js';

describe('query templates', () => {
  let db: Kysely<Db>;

  beforeAll(async () => {
    db = new Kysely<Db>({ dialect: new SqliteDialect({ database: new Database(':memory:') }) });
    for (const m of Object.values(buildMigrations('sqlite'))) await m.up(db as never);
    const now = new Date().toISOString();
    for (const [id, owner, amount] of [
      ['pi_a', 'acme', 100],
      ['pi_b', 'acme', 200],
      ['pi_c', 'other', 300],
    ] as const) {
      await db
        .insertInto('payments')
        .values({
          id,
          kind: 'payment_intent',
          owner,
          amount,
          currency: 'usd',
          status: 'succeeded',
          amount_refunded: 0,
          metadata: '{}',
          created_at: now,
          updated_at: now,
        })
        .execute();
    }
  });

  afterAll(async () => {
    await db?.destroy();
  });

  it('answers each call with its own values, as a freshly built query would', async () => {
    const byOwner = queryTemplate<{ owner: string; min: number }, { id: string }>(
      'test.byOwner',
      ['owner', 'min'],
      (k, p) =>
        k
          .selectFrom('payments')
          .select('id')
          .where('owner', '=', p('owner'))
          .where('amount', '>=', p('min'))
          .where('currency', '=', 'usd')
          .orderBy('id'),
    );
    for (const [owner, min] of [
      ['acme', 0],
      ['acme', 150],
      ['other', 0],
      ['nobody', 0],
    ] as const) {
      const viaTemplate = (await byOwner.run(db, 'sqlite', { owner, min })).rows.map((r) => r.id);
      const fresh = await db
        .selectFrom('payments')
        .select('id')
        .where('owner', '=', owner)
        .where('amount', '>=', min)
        .where('currency', '=', 'usd')
        .orderBy('id')
        .execute();
      expect(viaTemplate).toEqual(fresh.map((r) => r.id));
    }
    expect((await byOwner.run(db, 'sqlite', { owner: 'acme', min: 150 })).rows).toEqual([{ id: 'pi_b' }]);
  });

  it('refuses a declared name the builder never uses (its value would be silently ignored)', async () => {
    const t = queryTemplate<{ id: string; owner: string }, { id: string }>(
      'test.unused',
      ['id', 'owner'],
      (k, p) => k.selectFrom('payments').select('id').where('id', '=', p('id')),
    );
    await expect(t.run(db, 'sqlite', { id: 'pi_a', owner: 'acme' })).rejects.toThrow(/owner never used/);
  });

  it('refuses a placeholder glued into a larger value', async () => {
    const t = queryTemplate<{ id: string }, { id: string }>('test.glued', ['id'], (k, p) =>
      k
        .selectFrom('payments')
        .select('id')
        .where('id', '=', `x${p('id') as string}`),
    );
    await expect(t.run(db, 'sqlite', { id: 'pi_a' })).rejects.toThrow(/larger value/);
  });

  it('refuses to run without a value for a placeholder', async () => {
    const t = queryTemplate<{ id: string }, { id: string }>('test.missing', ['id'], (k, p) =>
      k.selectFrom('payments').select('id').where('id', '=', p('id')),
    );
    await expect(t.run(db, 'sqlite', {} as { id: string })).rejects.toThrow(/no value for id/);
  });
});
