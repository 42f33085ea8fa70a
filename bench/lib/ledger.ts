/**
 * Reads the service's ledger from outside the service, the way an auditor would: straight from the
 * database, so "every 202 has a ledger row" does not take the service's word for it.
 */
import Database from 'better-sqlite3';
import pg from 'pg';

export interface StatusCounts {
  total: number;
  byStatus: Record<string, number>;
}

export interface Ledger {
  /** Refunds whose request id starts with `prefix`, by status. */
  countByPrefix(prefix: string): Promise<StatusCounts>;
  /** How many of `requestIds` have no refund row. */
  missing(requestIds: readonly string[]): Promise<number>;
  /** Outbox rows not yet confirmed by the broker. */
  outboxPending(): Promise<number>;
  close(): Promise<void>;
}

const CHUNK = 500;
const likePrefix = (prefix: string) => `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

function tally(rows: { status: string; n: number | string }[]): StatusCounts {
  const byStatus: Record<string, number> = {};
  let total = 0;
  for (const r of rows) {
    byStatus[r.status] = Number(r.n);
    total += Number(r.n);
  }
  return { total, byStatus };
}

export function sqliteLedger(file: string): Ledger {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  db.pragma('busy_timeout = 2000');
  const byStatus = db.prepare(
    "select status, count(*) as n from refunds where request_id like ? escape '\\' group by status",
  );
  const pending = db.prepare('select count(*) as n from outbox where sent_at is null');
  return {
    async countByPrefix(prefix) {
      return tally(byStatus.all(likePrefix(prefix)) as { status: string; n: number }[]);
    },
    async missing(ids) {
      let found = 0;
      for (let i = 0; i < ids.length; i += CHUNK) {
        const chunk = ids.slice(i, i + CHUNK);
        const row = db
          .prepare(
            `select count(*) as n from refunds where request_id in (${chunk.map(() => '?').join(',')})`,
          )
          .get(...chunk) as { n: number };
        found += row.n;
      }
      return ids.length - found;
    },
    async outboxPending() {
      return (pending.get() as { n: number }).n;
    },
    async close() {
      db.close();
    },
  };
}

export function postgresLedger(connectionString: string): Ledger {
  const pool = new pg.Pool({ connectionString, max: 2 });
  return {
    async countByPrefix(prefix) {
      const { rows } = await pool.query<{ status: string; n: string }>(
        "select status, count(*) as n from refunds where request_id like $1 escape '\\' group by status",
        [likePrefix(prefix)],
      );
      return tally(rows);
    },
    async missing(ids) {
      let found = 0;
      for (let i = 0; i < ids.length; i += CHUNK) {
        const { rows } = await pool.query<{ n: string }>(
          'select count(*) as n from refunds where request_id = any($1)',
          [ids.slice(i, i + CHUNK)],
        );
        found += Number(rows[0]?.n ?? 0);
      }
      return ids.length - found;
    },
    async outboxPending() {
      const { rows } = await pool.query<{ n: string }>(
        'select count(*) as n from outbox where sent_at is null',
      );
      return Number(rows[0]?.n ?? 0);
    },
    async close() {
      await pool.end();
    },
  };
}

/** A fresh database per run on the shared server, dropped afterwards (WITH FORCE: PostgreSQL 13+). */
export async function createPgDatabase(adminUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`create database "${name}"`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

export async function dropPgDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`drop database if exists "${name}" with (force)`);
  } finally {
    await client.end();
  }
}
