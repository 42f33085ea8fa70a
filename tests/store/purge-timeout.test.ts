/**
 * Housekeeping deletes sent outbox rows after a week and expired idempotency keys every hour. On PostgreSQL the
 * service gives every statement DATABASE_TIMEOUT_MS (10 s; statement_timeout on the server too). Each purge was
 * one statement there: a backlog too large to delete within the timeout (millions of rows after housekeeping did
 * not run for a while) failed it, every hour again, and the table grew for good. A purge must get through any
 * backlog in statements that each fit in the timeout.
 *
 * The backlog is made slow to delete by a trigger that sleeps 2 ms per row deleted, so that one statement
 * deleting the whole backlog lasts over 3 s under a 1 s timeout, while a batch of 100 rows lasts 0.2 s.
 */
import pg from 'pg';
import { expect, it } from 'vitest';
import type { StoreOptions } from '../../src/store/index.js';
import { PG_URL, describePostgres } from './harness.js';

const BACKLOG = 1_500;
const BATCH = 100;
const TIMEOUT_MS = 1_000;

async function runSql(options: StoreOptions, ...statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`set search_path to "${options.schema!}"`);
    for (const s of statements) await client.query(s);
  } finally {
    await client.end();
  }
}

/** Every row deleted from `table` takes 2 ms more. */
function slowDeletes(table: string): string[] {
  return [
    `create or replace function slow_delete() returns trigger language plpgsql as $$
     begin perform pg_sleep(0.002); return old; end $$`,
    `create trigger ${table}_slow_delete before delete on ${table} for each row execute function slow_delete()`,
  ];
}

describePostgres('purges under a statement timeout', (h) => {
  it('deletes a week-old outbox backlog larger than one statement can delete in time, and keeps the rest', async () => {
    const options = h.newDatabase();
    const store = await h.open({ ...options, queryTimeoutMs: TIMEOUT_MS });
    const sentAt = new Date(Date.now() - 8 * 86_400_000).toISOString();
    await runSql(
      options,
      `insert into outbox (destination, message_id, payload, created_at, available_at, sent_at)
         select 'q', 'old-' || i, '{}', '${sentAt}', '${sentAt}', '${sentAt}'::timestamptz + i * interval '1 ms'
         from generate_series(1, ${BACKLOG}) i`,
      ...slowDeletes('outbox'),
    );
    await store.outbox.add({ destination: 'q', messageId: 'waiting', payload: {} });
    const recent = await store.outbox.add({ destination: 'q', messageId: 'sent-today', payload: {} });
    await store.outbox.markSent([recent.id]);

    expect(await store.outbox.purgeSent(new Date(Date.now() - 7 * 86_400_000), BATCH)).toBe(BACKLOG);
    expect(await store.outbox.pendingCount()).toBe(1);
    expect(await store.outbox.headersOf(['old-1', 'old-1500'])).toEqual(new Map());
    expect(await store.outbox.purgeSent(new Date(Date.now() - 7 * 86_400_000), BATCH)).toBe(0);
    // The row sent today is still there (purged once it is a week old).
    expect(await store.outbox.purgeSent(new Date(Date.now() + 1_000), BATCH)).toBe(1);
  }, 60_000);

  it('deletes a backlog of expired idempotency keys larger than one statement can delete in time, and keeps the rest', async () => {
    const options = h.newDatabase();
    const store = await h.open({ ...options, queryTimeoutMs: TIMEOUT_MS });
    const expired = new Date(Date.now() - 86_400_000).toISOString();
    await runSql(
      options,
      `insert into idempotency_keys (owner, key, request_hash, state, created_at, expires_at)
         select 'shop', 'old-' || i, 'h', 'done', '${expired}', '${expired}'::timestamptz + (i % 10) * interval '1 ms'
         from generate_series(1, ${BACKLOG}) i`,
      ...slowDeletes('idempotency_keys'),
    );
    expect(await store.idempotency.begin('shop', 'live', 'h', 86_400_000)).toMatchObject({
      kind: 'started',
    });

    expect(await store.idempotency.purgeExpired(new Date(), BATCH)).toBe(BACKLOG);
    expect(await store.idempotency.purgeExpired(new Date(), BATCH)).toBe(0);
    // The live key is kept: the same key and body are still its own request's, in progress.
    expect(await store.idempotency.begin('shop', 'live', 'h', 86_400_000)).toMatchObject({
      kind: 'in_progress',
    });
  }, 60_000);
});
