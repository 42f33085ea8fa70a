/**
 * An Idempotency-Key's claim is known by its time and a random token (migration 0010). Known by its time alone, the
 * late last write of a request (its abandon or complete, retried in the background through a database outage after
 * its first try's answer was lost) acted on a claim another request made in the same millisecond: it deleted that
 * claim (a third request then ran beside the second) or stored its own answer as the key's.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { expect, it } from 'vitest';
import type { StoreOptions } from '../../src/store/index.js';
import { IN_PROGRESS_STALE_MS, newIdempotencyClaim } from '../../src/store/idempotency-repo.js';
import { PG_URL, describeStore } from './harness.js';

const DAY = 24 * 3_600_000;

/** Runs `statement` straight on the database, as a process of an earlier version would. */
async function runSql(options: StoreOptions, statement: string, params: string[]): Promise<void> {
  if (options.url.startsWith('sqlite:')) {
    const db = new Database(options.url.slice('sqlite:'.length));
    try {
      db.prepare(statement.replace(/\$\d+/g, '?')).run(...params);
    } finally {
      db.close();
    }
    return;
  }
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`set search_path to "${options.schema}"`);
    await client.query(statement, params);
  } finally {
    await client.end();
  }
}

describeStore('Idempotency-Key claims are told apart by their token', (h) => {
  it("a request's late abandon or complete leaves alone a claim made after its abandon in the same millisecond", async () => {
    const db = await h.open(h.newDatabase());
    const t = new Date('2034-04-01T00:00:00.000Z');
    const first = newIdempotencyClaim(t);
    const second = newIdempotencyClaim(t);

    expect(await db.idempotency.begin('acme', 'k', 'h1', DAY, first)).toEqual({ kind: 'started' });
    // The first request's abandon is done, but its answer is lost (the connection dropped at the commit).
    expect(await db.idempotency.abandon('acme', 'k', first)).toBe(true);
    // The client's retry claims the key, in the same millisecond.
    expect(await db.idempotency.begin('acme', 'k', 'h1', DAY, second)).toEqual({ kind: 'started' });

    // The first request's abandon, tried again, leaves the retry's claim in place...
    expect(await db.idempotency.abandon('acme', 'k', first)).toBe(false);
    expect(await db.idempotency.begin('acme', 'k', 'h1', DAY, newIdempotencyClaim(t))).toEqual({
      kind: 'in_progress',
      since: t.toISOString(),
    });
    // ...and an answer of the first request is not stored as the key's.
    expect(await db.idempotency.complete('acme', 'k', 200, { by: 'first' }, first)).toBe(false);
    expect(await db.idempotency.complete('acme', 'k', 201, { by: 'second' }, second)).toBe(true);
    expect(await db.idempotency.begin('acme', 'k', 'h1', DAY, newIdempotencyClaim(t))).toEqual({
      kind: 'replay',
      status: 201,
      body: { by: 'second' },
    });
  });

  it('a stale claim taken over in the same millisecond (clocks apart) is left to the claim that took it', async () => {
    const db = await h.open(h.newDatabase());
    const t0 = new Date('2034-04-02T00:00:00.000Z');
    const t = new Date(t0.getTime() + IN_PROGRESS_STALE_MS);
    expect(await db.idempotency.begin('acme', 'k', 'h1', DAY, t0)).toEqual({ kind: 'started' });
    // Two retries on hosts whose clocks read the same millisecond: one takes the stale claim over, the other then
    // finds it in progress (its begin failed, as far as its process knows, and it abandons what it may have taken).
    const taker = newIdempotencyClaim(t);
    const loser = newIdempotencyClaim(t);
    expect(await db.idempotency.begin('acme', 'k', 'h1', DAY, taker)).toEqual({ kind: 'started' });
    expect(await db.idempotency.abandon('acme', 'k', loser)).toBe(false);
    expect(await db.idempotency.complete('acme', 'k', 200, { by: 'loser' }, loser)).toBe(false);
    expect(await db.idempotency.complete('acme', 'k', 200, { by: 'taker' }, taker)).toBe(true);
  });

  it('works beside a process of a version before tokens (rolling update)', async () => {
    const options = h.newDatabase();
    const db = await h.open(options);
    const t0 = new Date('2034-04-03T00:00:00.000Z');
    const t1 = new Date(t0.getTime() + IN_PROGRESS_STALE_MS);

    // An earlier version's claim: no token. It completes it by its time, as it always did.
    await runSql(
      options,
      `insert into idempotency_keys (owner, key, request_hash, state, response_status, response_body, created_at,
         expires_at) values ($1, $2, 'h1', 'in_progress', null, null, $3, $4)`,
      ['acme', 'old', t0.toISOString(), new Date(t0.getTime() + DAY).toISOString()],
    );
    expect(await db.idempotency.begin('acme', 'old', 'h1', DAY, newIdempotencyClaim(t0))).toEqual({
      kind: 'in_progress',
      since: t0.toISOString(),
    });
    expect(await db.idempotency.complete('acme', 'old', 200, { v: 'old' }, t0)).toBe(true);
    expect(await db.idempotency.begin('acme', 'old', 'h1', DAY, newIdempotencyClaim(t0))).toMatchObject({
      kind: 'replay',
      body: { v: 'old' },
    });

    // A new process's claim, gone stale, taken over by an earlier version (which leaves the token in place): the
    // new process's late abandon leaves the earlier version's claim alone.
    const mine = newIdempotencyClaim(t0);
    expect(await db.idempotency.begin('acme', 'mixed', 'h1', DAY, mine)).toEqual({ kind: 'started' });
    await runSql(
      options,
      `update idempotency_keys set request_hash = 'h1', state = 'in_progress', response_status = null,
         response_body = null, created_at = $1, expires_at = $2 where owner = 'acme' and key = 'mixed'`,
      [t1.toISOString(), new Date(t1.getTime() + DAY).toISOString()],
    );
    expect(await db.idempotency.abandon('acme', 'mixed', mine)).toBe(false);
    expect(await db.idempotency.complete('acme', 'mixed', 200, { by: 'mine' }, mine)).toBe(false);
    expect(await db.idempotency.complete('acme', 'mixed', 200, { by: 'old' }, t1)).toBe(true);
  });
});
