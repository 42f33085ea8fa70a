/**
 * A stop that begins while a housekeeping run is held in one of its purges (a database that stopped answering, here
 * a lock another session holds on the table) ends the run there: the purges after it are the next run's. Run one
 * after another as before, each would have waited its own statement timeout against a silent database, holding
 * the stop past its 25 s budget (exit 1 with the outbox unflushed).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POSTGRES_URL, postgresAvailable } from '../helpers/services.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { until } from '../store/harness.js';

const pgUp = await postgresAvailable();

describe.skipIf(!pgUp)('a stop during a housekeeping run', () => {
  let svc: TestService;
  let admin: pg.Client;

  beforeAll(async () => {
    // A run every 200 ms, so one is soon held by the lock below.
    svc = await startTestService('postgres', { API_AUTH: 'off' }, { housekeepingIntervalMs: 200 });
    admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.query('rollback').catch(() => undefined);
    await admin?.end();
    await svc?.stop();
  });

  it('runs none of the purges after the one it was held in', async () => {
    const schema = String((await svc.sql('select current_schema() as s'))[0]!['s']);
    const keys = `"${schema}".idempotency_keys`;
    // The first purge (expired idempotency keys) waits for this lock, as for a database that does not answer.
    await admin.query('begin');
    await admin.query(`lock table ${keys} in access exclusive mode`);
    const held = await until(async () => {
      const { rows } = await admin.query<{ n: number }>(
        'select count(*)::int as n from pg_locks where relation = $1::regclass and not granted',
        [keys],
      );
      return rows[0]!.n > 0;
    });
    expect(held).toBe(true);
    // What the next purge (sent outbox rows older than a week) would delete.
    const sentAt = new Date(Date.now() - 8 * 86_400_000).toISOString();
    await svc.sql(
      `insert into outbox (destination, routing_key, message_id, payload, created_at, available_at, attempts, sent_at)
       values ('stripe.events', 'x', 'housekeeping-stop-old-row', '{}', '${sentAt}', '${sentAt}', 1, '${sentAt}')`,
    );

    const stopped = svc.close(); // what SIGTERM does
    await admin.query('rollback'); // the held purge goes on and finishes
    await stopped;

    const rows = await svc.sql(
      "select count(*)::int as n from outbox where message_id = 'housekeeping-stop-old-row'",
    );
    expect(rows[0]!['n']).toBe(1);
    expect(svc.lines.filter((l) => /"level":(50|60)/.test(l))).toEqual([]);
  }, 60_000);
});
