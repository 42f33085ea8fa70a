/**
 * PostgreSQL sessions on a test's own schema, for the store tests that look at what the database shows (sessions,
 * locks, indexes, the migration bookkeeping) while the service works on it.
 */
import pg from 'pg';
import type { StoreOptions } from '../../src/store/index.js';
import { PG_URL } from './harness.js';

/** A client on `options`' schema, with its backend's pid; the caller ends it. */
export async function connect(options: StoreOptions): Promise<pg.Client & { pid: number }> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  await client.query(`set search_path to "${options.schema}"`);
  const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
  return Object.assign(client, { pid: rows[0]!.pid });
}

/** Runs one statement on a session of its own on `options`' schema and answers its rows. */
export async function query<R extends pg.QueryResultRow>(
  options: StoreOptions,
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = await connect(options);
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** The statement inserting a queued async refund `id` (of payment intent pi_`id`), as an accept writes it. */
export const refundRow = (id: string) =>
  `insert into refunds (request_id, owner, payment_intent_id, amount, status, mode, created_at, updated_at)
   values ('${id}', '', 'pi_${id}', 700, 'queued', 'async', now(), now())`;

/**
 * Takes a migrated schema back to before `name` (its bookkeeping and what followed it gone), dropping the indexes
 * `drop` names.
 */
export async function backToBefore(options: StoreOptions, name: string, drop: string[]): Promise<void> {
  await query(options, 'delete from kysely_migration where name >= $1', [name]);
  for (const index of drop) await query(options, `drop index ${index}`);
  // What the later migrations without indexes added.
  if (name <= '0010_idempotency_claim_token')
    await query(options, 'alter table idempotency_keys drop column claim_token');
}
