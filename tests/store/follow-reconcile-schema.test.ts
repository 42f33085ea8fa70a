/**
 * reconcile opens the ledger with existingOnly and must change nothing there: a reconcile of a newer build used to
 * run that build's migrations on a ledger an older service was still running on. A ledger whose schema is not the
 * one this build expects (older or newer) is refused with LedgerSchemaError, and left exactly as it was.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { LedgerSchemaError, createStore } from '../../src/store/index.js';
import type { StoreOptions } from '../../src/store/index.js';
import { runScript } from '../helpers/processes.js';
import { PG_URL, describeStore } from './harness.js';

/** Runs `statements` straight on the database, as an earlier version of the service would have left it. */
async function runSql(options: StoreOptions, statements: string[]): Promise<void> {
  if (options.url.startsWith('sqlite:')) {
    const db = new Database(options.url.slice('sqlite:'.length));
    try {
      for (const s of statements) db.prepare(s).run();
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`set search_path to "${options.schema}"`);
    for (const s of statements) await client.query(s);
  } finally {
    await client.end();
  }
}

/** The migrations applied, and every table and index, read straight from the database. */
async function schemaOf(options: StoreOptions): Promise<{ migrations: string[]; objects: string[] }> {
  if (options.url.startsWith('sqlite:')) {
    const db = new Database(options.url.slice('sqlite:'.length), { readonly: true });
    try {
      const migrations = (
        db.prepare('select name from kysely_migration order by name').all() as { name: string }[]
      ).map((r) => r.name);
      const objects = (
        db
          .prepare(
            "select type || ' ' || name as o from sqlite_master where type in ('table', 'index') order by 1",
          )
          .all() as { o: string }[]
      ).map((r) => r.o);
      return { migrations, objects };
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const m = await client.query<{ name: string }>(
      `select name from "${options.schema}".kysely_migration order by name`,
    );
    const o = await client.query<{ o: string }>(
      `select c.relkind::text || ' ' || c.relname as o from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = $1 and c.relkind in ('r', 'i') order by 1`,
      [options.schema],
    );
    return { migrations: m.rows.map((r) => r.name), objects: o.rows.map((r) => r.o) };
  } finally {
    await client.end();
  }
}

/** A ledger as the version before 0009 left it. */
async function olderLedger(h: {
  newDatabase(): StoreOptions;
  open(o: StoreOptions): Promise<{ close(): Promise<void> }>;
}) {
  const options = h.newDatabase();
  const store = await h.open(options);
  await store.close();
  await runSql(options, [
    "delete from kysely_migration where name >= '0009_refunds_in_flight_idx'",
    'drop index refunds_in_flight_idx',
    'alter table idempotency_keys drop column claim_token',
    'alter table refunds drop column http_request_id',
  ]);
  return options;
}

describeStore('reconcile opens the ledger without migrating it', (h) => {
  it('refuses a ledger of an older schema and leaves its migrations and tables as they were', async () => {
    const options = await olderLedger(h);
    const before = await schemaOf(options);
    expect(before.migrations).not.toContain('0009_refunds_in_flight_idx');

    const opening = createStore({ ...options, existingOnly: true });
    await expect(opening).rejects.toBeInstanceOf(LedgerSchemaError);
    await expect(opening).rejects.toThrow(/older than this version.*0009_refunds_in_flight_idx/);
    expect(await schemaOf(options)).toEqual(before);
  });

  it('refuses a ledger a newer version has migrated further, changing nothing', async () => {
    const options = h.newDatabase();
    const store = await h.open(options);
    await store.close();
    await runSql(options, [
      "insert into kysely_migration (name, timestamp) values ('9999_from_a_newer_version', '2099-01-01T00:00:00.000Z')",
    ]);
    const before = await schemaOf(options);

    const opening = createStore({ ...options, existingOnly: true });
    await expect(opening).rejects.toBeInstanceOf(LedgerSchemaError);
    await expect(opening).rejects.toThrow(/newer than this version.*9999_from_a_newer_version/);
    expect(await schemaOf(options)).toEqual(before);
  });

  it('the service itself still brings an older ledger up to date', async () => {
    const options = await olderLedger(h);
    await h.open(options);
    expect((await schemaOf(options)).migrations).toContain('0009_refunds_in_flight_idx');
  });
});

describe('npm run reconcile on an older ledger', () => {
  it('exits 2 saying the schema is older, and leaves the ledger as it was', async () => {
    const opened: { close(): Promise<void> }[] = [];
    const dir = mkdtempSync(path.join(tmpdir(), 'follow-reconcile-'));
    try {
      const options = await olderLedger({
        newDatabase: () => ({ url: `sqlite:${path.join(dir, 'ledger.db')}` }),
        open: async (o) => {
          const s = await createStore(o);
          opened.push(s);
          return s;
        },
      });
      const before = await schemaOf(options);
      const res = await runScript('scripts/reconcile.ts', ['--since', '1h'], {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: dir,
          DATABASE_URL: options.url,
          STRIPE_SECRET_KEY: 'sk_test_followschema',
          STRIPE_API_BASE: 'http://127.0.0.1:9',
        },
      });
      expect(res.code).toBe(2);
      expect(res.stdout).toBe('');
      expect(res.stderr).toMatch(/^error: .*older than this version/m);
      expect(res.stderr).not.toMatch(/^\s+at /m);
      expect(await schemaOf(options)).toEqual(before);
    } finally {
      await Promise.allSettled(opened.map((s) => s.close()));
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
