/**
 * /readyz on PostgreSQL: why the store check is down, in the answer (see readyz-reasons.test.ts), and the check
 * itself kept cheap: it is answered to anyone, uncapped, and each probe took a connection of the pool that requests
 * use for as long as the database took to answer.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { POSTGRES_URL, pgAdmin, postgresAvailable } from '../helpers/services.js';
import { proxyFor, type TcpProxy } from '../helpers/tcp-proxy.js';

const pgOk = await postgresAvailable();

interface ReadyAnswer {
  status: number;
  text: string;
  body: {
    status: string;
    failing?: string[];
    reasons?: Record<string, string>;
    checks: Record<string, string>;
  };
}

async function probe(url: string): Promise<ReadyAnswer> {
  const res = await fetch(`${url}/readyz`);
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as ReadyAnswer['body'] };
}

async function sessionsOf(role: string): Promise<number> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(
      'select count(*)::int as n from pg_stat_activity where usename = $1',
      [role],
    );
    return rows[0]!.n;
  } finally {
    await client.end();
  }
}

describe.skipIf(!pgOk)('/readyz says why PostgreSQL is down', () => {
  // The service's own role, so its sessions can be told from other users' of the shared database.
  const role = `readyz_${randomBytes(4).toString('hex')}`;
  const password = `pw${randomBytes(6).toString('hex')}`;
  let proxy: TcpProxy;
  let svc: TestService | undefined;
  beforeAll(async () => {
    // The role's own schema, first on its default search_path ("$user"), so the service needs no schema option.
    await pgAdmin([`create role ${role} login`, `create schema ${role} authorization ${role}`]);
    // The shared PostgreSQL trusts every connection: the password is never checked, only carried in DATABASE_URL.
    const via = await proxyFor(POSTGRES_URL);
    proxy = via.proxy;
    const url = new URL(via.url);
    url.username = role;
    url.password = password;
    svc = await startTestService(
      'postgres',
      { DATABASE_URL: url.toString(), DATABASE_TIMEOUT_MS: '3000' },
      { storeSchema: undefined },
    );
  });
  afterAll(async () => {
    await svc?.stop();
    await proxy?.close();
    await pgAdmin([
      `drop schema if exists ${role} cascade`,
      `select pg_terminate_backend(pid) from pg_stat_activity where usename = '${role}'`,
      `drop role if exists ${role}`,
    ]);
  });

  it('says the database did not answer in time while it is silent, and nothing of where it is', async () => {
    expect((await probe(svc!.url)).status).toBe(200);
    proxy.blackHole();
    try {
      const res = await probe(svc!.url);
      expect(res.status).toBe(503);
      expect(res.body.failing).toEqual(['store']);
      expect(res.body.reasons).toEqual({ store: 'the database did not answer in time' });
      expect(res.text).not.toContain(password);
      expect(res.text).not.toContain(role);
      expect(res.text).not.toContain(String(proxy.port));
    } finally {
      proxy.forward();
    }
    // The session the silenced question was on is given up; the next question gets an answer.
    const back = await eventually(
      () => probe(svc!.url),
      (r) => r.status === 200,
    );
    expect(back.status).toBe(200);
    expect(back.body.reasons).toBeUndefined();
  }, 30_000);

  it('a burst of probes while the database is slow takes one session, not one per probe', async () => {
    expect((await probe(svc!.url)).status).toBe(200);
    const before = await sessionsOf(role);
    // Every byte to the database held a while: each probe's question is still under way when the next arrives.
    proxy.delayClientBytes(1_000);
    let answers: ReadyAnswer[];
    try {
      answers = await Promise.all(Array.from({ length: 20 }, () => probe(svc!.url)));
    } finally {
      proxy.delayClientBytes(0);
    }
    expect(new Set(answers.map((a) => a.status))).toEqual(new Set([200]));
    // The pool keeps the sessions it opened idle for a while: one per probe asked at once, had they each asked.
    expect(await sessionsOf(role)).toBeLessThanOrEqual(before + 1);
  }, 30_000);

  it('says the database refuses writes and which setting makes it so', async () => {
    await pgAdmin([
      `alter role ${role} set default_transaction_read_only = on`,
      `select pg_terminate_backend(pid) from pg_stat_activity where usename = '${role}'`,
    ]);
    try {
      const res = await eventually(
        () => probe(svc!.url),
        (r) => r.body.reasons?.['store']?.includes('refuses writes') ?? false,
        10_000,
      );
      expect(res.status).toBe(503);
      expect(res.body.failing).toEqual(['store']);
      expect(res.body.reasons).toEqual({
        store: 'the database refuses writes (default_transaction_read_only is on)',
      });
    } finally {
      await pgAdmin([
        `alter role ${role} reset default_transaction_read_only`,
        `select pg_terminate_backend(pid) from pg_stat_activity where usename = '${role}'`,
      ]);
    }
    const back = await eventually(
      () => probe(svc!.url),
      (r) => r.status === 200,
    );
    expect(back.body.reasons).toBeUndefined();
  }, 30_000);
});
