/**
 * A PostgreSQL that refuses writes (a hot standby after a failover, `default_transaction_read_only`) answered the
 * readiness ping (`select 1`) as any other: /readyz said ready while every refund, payment and webhook failed.
 * The role here is the deployment's own, made read-only after the service started, and its sessions ended, as a
 * failover ends them.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paidIntent, postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { POSTGRES_URL, pgAdmin, postgresAvailable } from '../helpers/services.js';

const pgOk = await postgresAvailable();

interface ReadyAnswer {
  status: number;
  body: { status: string; failing?: string[]; checks: Record<string, string> };
}

describe.skipIf(!pgOk)('/readyz on a PostgreSQL that refuses writes', () => {
  const role = `follow_ro_${randomBytes(4).toString('hex')}`;
  let svc: TestService | undefined;

  beforeAll(async () => {
    // The role's own schema, first on its default search_path ("$user"), so the service needs no schema option.
    await pgAdmin([`create role ${role} login`, `create schema ${role} authorization ${role}`]);
    const url = new URL(POSTGRES_URL);
    url.username = role;
    svc = await startTestService('postgres', { DATABASE_URL: url.toString() }, { storeSchema: undefined });
  });

  afterAll(async () => {
    await svc?.stop();
    await pgAdmin([
      `drop schema if exists ${role} cascade`,
      `select pg_terminate_backend(pid) from pg_stat_activity where usename = '${role}'`,
      `drop role if exists ${role}`,
    ]);
  });

  const probe = async (): Promise<ReadyAnswer> => {
    const res = await fetch(`${svc!.url}/readyz`);
    return { status: res.status, body: (await res.json()) as ReadyAnswer['body'] };
  };

  it('answers 503 naming the store, and logs why, once the database refuses writes; a refund gets 503 store_unavailable', async () => {
    const pi = await paidIntent(svc!.url, 5000);
    const before = await probe();
    expect(before.status).toBe(200);
    expect(before.body.checks['store']).toBe('ok');

    await pgAdmin([
      `alter role ${role} set default_transaction_read_only = on`,
      `select pg_terminate_backend(pid) from pg_stat_activity where usename = '${role}'`,
    ]);
    // The pool drops the sessions that were ended (a probe may meet one first); every probe after uses a new one.
    await new Promise((r) => setTimeout(r, 500));
    await probe();
    const answers = [await probe(), await probe(), await probe()];
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.body.failing).toEqual(['store']);
      expect(a.body.checks['store']).toBe('down');
    }
    expect(svc!.lines.some((l) => l.includes('readiness: store down') && l.includes('refuses writes'))).toBe(
      true,
    );
    // A refund asked for meanwhile: the database's outage, to retry (503 store_unavailable), not a 500.
    const refused = await postJson(`${svc!.url}/refund-async`, {
      payment_intent_id: pi,
      amount: 300,
      request_id: `ro-${randomBytes(4).toString('hex')}`,
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.json).toMatchObject({ status: 503, code: 'store_unavailable' });

    // Writable again (the failover finished): ready again.
    await pgAdmin([
      `alter role ${role} reset default_transaction_read_only`,
      `select pg_terminate_backend(pid) from pg_stat_activity where usename = '${role}'`,
    ]);
    await new Promise((r) => setTimeout(r, 500));
    await probe();
    const after = await probe();
    expect(after.status).toBe(200);
    expect(after.body.checks['store']).toBe('ok');
    const retried = await postJson(`${svc!.url}/refund-async`, {
      payment_intent_id: pi,
      amount: 300,
      request_id: `ro-${randomBytes(4).toString('hex')}`,
    });
    expect(retried.status).toBe(202);
  }, 30_000);
});
