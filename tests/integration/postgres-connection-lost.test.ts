/**
 * The server ends the service's PostgreSQL session while a request's statement runs (a failover, an operator's
 * pg_terminate_backend, a restart). That is the database being unavailable, not a fault of the service: the
 * caller gets a retryable 503 store_unavailable, and its retry makes the refund once.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStore } from '../../src/store/index.js';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { captureLogger } from '../helpers/log-capture.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { POSTGRES_URL, postgresAvailable } from '../helpers/services.js';

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('PostgreSQL ending the session under a running statement', () => {
  const appName = `lost_${randomBytes(4).toString('hex')}`;
  let svc: TestService;
  let admin: pg.Client;
  beforeAll(async () => {
    const url = new URL(POSTGRES_URL);
    url.searchParams.set('application_name', appName);
    svc = await startTestService('postgres', { DATABASE_URL: url.toString() });
    admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await svc?.stop();
  });

  it('answers 503 store_unavailable with Retry-After, and the retry refunds once', async () => {
    const pi = await paidIntent(svc.url, 5000);
    const requestId = `lost-${randomBytes(4).toString('hex')}`;
    const body = { payment_intent_id: pi, amount: 700, request_id: requestId };

    // Another session holds the payment row, so the refund's accept waits on the lock with its statement running.
    const holder = new pg.Client({ connectionString: POSTGRES_URL });
    await holder.connect();
    let res: Awaited<ReturnType<typeof postJson>>;
    try {
      const [schema] = await svc.sql('SELECT current_schema() AS s');
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM "${String(schema!['s'])}".payments WHERE id = $1 FOR UPDATE`, [pi]);
      const pending = postJson(`${svc.url}/refund-async`, body);
      const waiting = await eventually(
        async () =>
          (
            await admin.query(
              "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
              [appName],
            )
          ).rows as { pid: number }[],
        (rows) => rows.length > 0,
        5_000,
      );
      expect(waiting.length).toBeGreaterThan(0);
      // Every session of the service waiting there (a webhook for the payment may be waiting beside the accept).
      for (const { pid } of waiting) await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      res = await pending;
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.json).toMatchObject({ status: 503, code: 'store_unavailable' });

    const retried = await postJson(`${svc.url}/refund-async`, body);
    expect(retried.status).toBe(202);
    expect((await getJson(`${svc.url}/refund-status/${requestId}`)).json).toMatchObject({ amount: 700 });
    const refunds = await svc.deps.store.refunds.listForPaymentIntent(pi);
    expect(refunds.map((r) => r.requestId)).toEqual([requestId]);
  });
});

describe.skipIf(!pgOk)('PostgreSQL ending idle sessions', () => {
  // An idle connection the server ended was logged twice, as 'PostgreSQL connection lost' and as 'idle PostgreSQL
  // connection failed': the connection's own listener and the pool's both heard its error.
  it('logs each ended idle connection once', async () => {
    const tag = `idle_${randomBytes(4).toString('hex')}`;
    const url = new URL(POSTGRES_URL);
    url.searchParams.set('application_name', tag);
    const { logger, lines } = captureLogger('info');
    const store = await createStore({ url: url.toString(), schema: tag, logger, poolSize: 3 });
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    try {
      await Promise.all([store.ping(), store.ping(), store.ping()]);
      const from = lines.length;
      const ended = await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND state = 'idle'",
        [tag],
      );
      const n = ended.rowCount ?? 0;
      expect(n).toBeGreaterThan(0);
      const about = () =>
        lines
          .slice(from)
          .map((l) => (JSON.parse(l) as { msg: string }).msg)
          .filter((m) => m === 'PostgreSQL connection lost' || m === 'idle PostgreSQL connection failed');
      await eventually(
        async () => about(),
        (ms) => ms.length >= n,
        5_000,
      );
      await new Promise((r) => setTimeout(r, 300));
      expect(about()).toEqual(Array.from({ length: n }, () => 'idle PostgreSQL connection failed'));
      // The pool opens new connections for what comes next.
      await store.ping();
    } finally {
      await store.close();
      await admin.query(`DROP SCHEMA IF EXISTS "${tag}" CASCADE`);
      await admin.end();
    }
  });
});
