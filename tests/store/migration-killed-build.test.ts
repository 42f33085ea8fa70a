/**
 * PostgreSQL: a process killed (SIGKILL) while its start builds an index CONCURRENTLY left the build running in the
 * database until PostgreSQL next had something to say to the client, holding the migration advisory lock: the next
 * start waited for the whole build. The migration connection sets client_connection_check_interval, so the server
 * notices the client is gone within seconds and ends the session (and the build, and the lock, with it).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { expect, it } from 'vitest';
import type { StoreOptions } from '../../src/store/index.js';
import { describePostgres, uid, until } from './harness.js';
import { backToBefore, connect, query, refundRow } from './pg-support.js';

const require = createRequire(import.meta.url);
const TSX = require.resolve('tsx');
const root = path.resolve(import.meta.dirname, '../..');

/** A process of the service starting on `options`' database: it migrates, then exits. */
function startProcess(options: StoreOptions) {
  const code = `
    const { pino } = await import('pino');
    const { createStore } = await import(${JSON.stringify(path.join(root, 'src/store/index.ts'))});
    const store = await createStore({
      url: ${JSON.stringify(options.url)},
      schema: ${JSON.stringify(options.schema)},
      logger: pino({ level: 'silent' }),
    });
    await store.close();`;
  return spawn(process.execPath, ['--import', TSX, '--input-type=module', '-e', code], {
    cwd: root,
    stdio: 'ignore',
  });
}

describePostgres('a start killed during an index build', (h) => {
  it('its session, build and migration lock end soon after, not when the build would have', async () => {
    const options = h.newDatabase();
    await (await h.open(options)).close();
    // The next start runs 0009 again, which builds refunds_in_flight_idx CONCURRENTLY on a table holding rows.
    await backToBefore(options, '0009', ['refunds_in_flight_idx']);
    await query(options, refundRow(uid('old')));
    // A refund accept in flight, its transaction open: the build waits for it (as for a long one on a big table).
    const accept = await connect(options);
    const child = startProcess(options);
    try {
      await accept.query('begin');
      await accept.query(refundRow('order-in-flight'));
      let building: number | undefined;
      const found = await until(async () => {
        const rows = await query<{ pid: number }>(
          options,
          `select pid from pg_stat_activity where $1 = any(pg_blocking_pids(pid))
             and query ilike 'create index concurrently%'`,
          [accept.pid],
        );
        building = rows[0]?.pid;
        return building !== undefined;
      }, 30_000);
      expect(found).toBe(true);

      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      // The accept is still open: without the check the build would wait for it for as long as it lasts.
      const gone = await until(
        async () =>
          (await query(options, 'select 1 from pg_stat_activity where pid = $1', [building])).length === 0,
        15_000,
      );
      expect(gone).toBe(true);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await accept.query('rollback').catch(() => undefined);
      await accept.end();
    }
    // The next start builds the index and comes up.
    await (await h.open(options)).close();
    const names = (await query<{ name: string }>(options, 'select name from kysely_migration')).map(
      (r) => r.name,
    );
    expect(names).toContain('0009_refunds_in_flight_idx');
  });
});
