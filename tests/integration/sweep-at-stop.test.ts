/**
 * A sweep still at work when a stop closes the store (here the stuck-refund sweep, held re-queuing the first of two
 * refunds by a row lock another session holds) stops quietly: it used to go on to the next refund against the closed
 * store and log "stuck refund sweep failed" at error level, a line that sent operators looking for an outage.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POSTGRES_URL, postgresAvailable } from '../helpers/services.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { until } from '../store/harness.js';

const pgUp = await postgresAvailable();

describe.skipIf(!pgUp)('a stop while the stuck-refund sweep is at work', () => {
  const appName = `sweep-at-stop-${randomBytes(4).toString('hex')}`;
  let svc: TestService;
  let admin: pg.Client;
  /** Reads pg_stat_activity outside admin's transaction, in which it would read the same snapshot every time. */
  let observer: pg.Client;

  beforeAll(async () => {
    const url = new URL(POSTGRES_URL);
    url.searchParams.set('application_name', appName);
    // The stuck-refund sweep runs every 12 sweep intervals: every 6 s here, rarely enough that the first refund
    // below is locked before a sweep re-queues it.
    svc = await startTestService(
      'postgres',
      { API_AUTH: 'off', DATABASE_URL: url.toString() },
      { sweepIntervalMs: 500 },
    );
    admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    observer = new pg.Client({ connectionString: POSTGRES_URL });
    await observer.connect();
  });
  afterAll(async () => {
    await admin?.query('rollback').catch(() => undefined);
    await admin?.end();
    await observer?.end();
    await svc?.stop();
  });

  async function sessionsOfService(where: string): Promise<number> {
    const { rows } = await observer.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity where application_name = $1 and ${where}`,
      [appName],
    );
    return rows[0]!.n;
  }

  it('logs no failure once the store is closed under it', async () => {
    const schema = String((await svc.sql('select current_schema() as s'))[0]!['s']);
    // Two refunds queued 20 minutes ago that never got a message: the sweep re-queues them, oldest first.
    const values = [1, 2].map((i) => {
      const at = new Date(Date.now() - (30 - i) * 60_000).toISOString();
      return `('sweep-stop-${i}', 'owner', 'pi_sweep_stop_${i}', 100, 'usd', null, 'queued', null, null, 0, 'async', null, '{}', '${at}', '${at}')`;
    });
    // The first one locked first, so the sweep that finds them waits in its re-queue transaction.
    await admin.query(`set search_path to "${schema}"`);
    await admin.query('begin');
    await admin.query(
      `insert into refunds (request_id, owner, payment_intent_id, amount, currency, reason, status, stripe_refund_id,
         failure_reason, attempts, mode, request_hash, metadata, created_at, updated_at) values ${values[0]}`,
    );
    await admin.query('commit');
    await admin.query('begin');
    await admin.query("select 1 from refunds where request_id = 'sweep-stop-1' for update");
    await svc.sql(
      `insert into refunds (request_id, owner, payment_intent_id, amount, currency, reason, status, stripe_refund_id,
         failure_reason, attempts, mode, request_hash, metadata, created_at, updated_at) values ${values[1]}`,
    );
    expect(await until(async () => (await sessionsOfService("wait_event_type = 'Lock'")) > 0, 15_000)).toBe(
      true,
    );

    const stopped = svc.close(); // what SIGTERM does
    // The store is closing once every other session of the service is gone: only the held one is left.
    expect(
      await until(
        async () =>
          svc.lines.some((l) => l.includes('"step":"housekeeping done"')) &&
          (await sessionsOfService("wait_event_type is distinct from 'Lock'")) === 0,
        15_000,
      ),
    ).toBe(true);
    await admin.query('rollback');
    await stopped;

    expect(svc.lines.filter((l) => /sweep failed/.test(l))).toEqual([]);
    expect(svc.lines.filter((l) => /"level":(50|60)/.test(l))).toEqual([]);
  }, 60_000);
});
