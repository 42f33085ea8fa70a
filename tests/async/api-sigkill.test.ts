/**
 * SIGKILL of the built API process (dist/src/main.bundle.mjs) in a burst of POST /refund-async: no graceful
 * shutdown, no final outbox flush. The promise under test is the README's: a 202 means the refund and its
 * outbox row were committed before the answer, so every request answered 202 is in the ledger after the kill,
 * and the restarted process's relay publishes every row the killed one had not (once the 15 s lease of the
 * rows handed to the dead relay runs out). A request cut off without an answer may or may not have been
 * taken; its retry with the same request_id after the restart answers 202 and leaves exactly one ledger row.
 * Run for SQLite (a file in a temp dir) and PostgreSQL (a schema of its own), both at once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, it, type ExpectStatic } from 'vitest';
import { POSTGRES_URL, postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import { buildIntoTemp, killAllBuilt, post, startBuilt, type Answer, type Build } from './support/built.js';
import {
  clusterEnv,
  paidIntents,
  peekRabbit,
  pgSchema,
  prefixedTopology,
  sleep,
  startStripe,
  uniqueTag,
  type PgSchema,
  type RabbitPeek,
  type StripeStandIn,
} from './support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());
/** The relay's lease on a row handed to it (OutboxRelay leaseMs), plus start-up and slack. */
const RECOVERY_BUDGET_MS = 25_000;
/** 202s to see before the kill, so that it lands in the middle of the burst. */
const ACCEPTED_BEFORE_KILL = 300;
const CLIENTS = 16;

/** The ledger as read straight from the database the service wrote (no store code of ours in between). */
interface Ledger {
  /** Rows per request_id, over the given ids (0 for none). */
  rowsPer(keys: readonly string[]): Promise<Map<string, number>>;
  unsentOutbox(): Promise<number>;
  close(): Promise<void>;
}

function sqliteLedger(file: string): Ledger {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  return {
    async rowsPer(keys) {
      const rows = db
        .prepare(
          'SELECT request_id AS k, count(*) AS n FROM refunds WHERE request_id IN (SELECT value FROM json_each(?)) GROUP BY request_id',
        )
        .all(JSON.stringify(keys)) as { k: string; n: number }[];
      return countsFor(keys, rows);
    },
    async unsentOutbox() {
      return (db.prepare('SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL').get() as { n: number }).n;
    },
    async close() {
      db.close();
    },
  };
}

async function pgLedger(schema: string): Promise<Ledger> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  const refunds = `"${schema}".refunds`;
  const outbox = `"${schema}".outbox`;
  return {
    async rowsPer(keys) {
      const { rows } = await client.query<{ k: string; n: string }>(
        `SELECT request_id AS k, count(*) AS n FROM ${refunds} WHERE request_id = ANY($1) GROUP BY request_id`,
        [keys],
      );
      return countsFor(
        keys,
        rows.map((r) => ({ k: r.k, n: Number(r.n) })),
      );
    },
    async unsentOutbox() {
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${outbox} WHERE sent_at IS NULL`,
      );
      return Number(rows[0]!.n);
    },
    close: () => client.end(),
  };
}

function countsFor(keys: readonly string[], rows: { k: string; n: number }[]): Map<string, number> {
  const counts = new Map(keys.map((k) => [k, 0]));
  for (const r of rows) counts.set(r.k, r.n);
  return counts;
}

describe.skipIf(!ready)('SIGKILL of the API mid-burst (the built process)', () => {
  let build: Build;
  let stripe: StripeStandIn;
  let peek: RabbitPeek;

  beforeAll(async () => {
    build = await buildIntoTemp('kill-build-');
    stripe = await startStripe();
    peek = await peekRabbit();
  }, 120_000);

  afterAll(async () => {
    killAllBuilt();
    await peek?.close();
    await stripe?.close();
    build?.remove();
  });

  async function scenario(backend: 'sqlite' | 'postgres', expect: ExpectStatic): Promise<void> {
    const tag = uniqueTag(`kill_${backend}`);
    const topology = prefixedTopology(tag);
    let dir: string | undefined;
    let schema: PgSchema | undefined;
    let ledger: Ledger | undefined;
    const kills: (() => void)[] = [];
    try {
      let env: Record<string, string>;
      if (backend === 'sqlite') {
        dir = mkdtempSync(path.join(tmpdir(), 'kill-sqlite-'));
        env = clusterEnv(stripe, { url: `sqlite:${path.join(dir, 'ledger.db')}` }, tag, { ROLE: 'api' });
      } else {
        schema = pgSchema(tag);
        await schema.create();
        env = clusterEnv(stripe, schema, tag, { ROLE: 'api' });
      }

      // 1. The API, some paid intents.
      const first = await startBuilt(build.main, env);
      kills.push(() => first.signal('SIGKILL'));
      const intents = await paidIntents(first.url, 10, 100_000);
      ledger =
        backend === 'sqlite' ? sqliteLedger(path.join(dir!, 'ledger.db')) : await pgLedger(schema!.schema);

      // 2. The burst: 12 clients on kept-alive connections, 4 opening one per request.
      const body = (key: string, i: number) => ({
        request_id: key,
        payment_intent_id: intents[i % intents.length],
        amount: 10,
      });
      const results: (Answer & { key: string; i: number })[] = [];
      let accepted = 0;
      let sending = true;
      let n = 0;
      let killAt = 0;
      const keepAlive = new Agent({ keepAlive: true, maxSockets: 12 });
      const senders = Array.from({ length: CLIENTS }, async (_, s) => {
        while (sending) {
          const i = n++;
          const key = `${tag}-${i}`;
          const answer = await post(
            `${first.url}/refund-async`,
            body(key, i),
            s < 12 ? keepAlive : false,
            10_000,
          );
          results.push({ key, i, ...answer });
          if (answer.status === 202) accepted++;
          // 3. SIGKILL mid-burst, from whichever client sees the threshold first.
          if (!killAt && accepted >= ACCEPTED_BEFORE_KILL) killAt = first.signal('SIGKILL');
          if (answer.error) await sleep(20);
        }
      });
      const started = Date.now();
      while (!killAt && Date.now() - started < 10_000) await sleep(5);
      if (!killAt) killAt = first.signal('SIGKILL');
      const exit = await first.exited;
      sending = false;
      await Promise.all(senders);
      keepAlive.destroy();
      expect(exit.signal).toBe('SIGKILL');

      const ok = results.filter((r) => r.status === 202);
      const unanswered = results.filter((r) => r.error);
      const other = results.filter((r) => !r.error && r.status !== 202);
      expect(other.map((r) => `${r.status} ${r.body}`)).toEqual([]);
      const cutOff = unanswered.filter((r) => r.error !== 'ECONNREFUSED');
      expect(ok.length).toBeGreaterThanOrEqual(ACCEPTED_BEFORE_KILL);

      // Every 202 is in the ledger the moment the process is gone (before anything restarts).
      const atKill = await ledger.rowsPer(ok.map((r) => r.key));
      expect([...atKill].filter(([, c]) => c !== 1)).toEqual([]);
      const cutOffTaken = [...(await ledger.rowsPer(cutOff.map((r) => r.key))).values()].filter(
        (c) => c > 0,
      ).length;
      const unsentAtKill = await ledger.unsentOutbox();

      // 4. The same configuration again.
      const restartAt = Date.now();
      const second = await startBuilt(build.main, env);
      kills.push(() => second.signal('SIGKILL'));
      const upAt = Date.now();
      // 5. Its relay publishes what the killed one had not, once the dead relay's lease has run out.
      let unsent = await ledger.unsentOutbox();
      while (unsent > 0 && Date.now() - restartAt < RECOVERY_BUDGET_MS) {
        await sleep(100);
        unsent = await ledger.unsentOutbox();
      }
      const recoveredMs = Date.now() - restartAt;
      expect(unsent, 'outbox rows never published after the restart').toBe(0);

      // Each request cut off is retried with its request_id: 202, one row.
      const retried = await Promise.all(
        unanswered.map((r) => post(`${second.url}/refund-async`, body(r.key, r.i), false, 10_000)),
      );
      expect(retried.map((a) => a.status).filter((s) => s !== 202)).toEqual([]);
      const keys = [...ok, ...unanswered].map((r) => r.key);
      const rows = await ledger.rowsPer(keys);
      expect([...rows].filter(([, c]) => c !== 1)).toEqual([]);

      let after = await ledger.unsentOutbox();
      const deadline = Date.now() + 10_000;
      while (after > 0 && Date.now() < deadline) {
        await sleep(50);
        after = await ledger.unsentOutbox();
      }
      expect(after).toBe(0);
      second.signal('SIGKILL');
      await second.exited;

      // Every request in the ledger has its message on the requests queue (no worker runs: they all wait there).
      const messages = await peek.drain(topology.requests);
      const perKey = new Map<string, number>();
      for (const m of messages) {
        const k = (JSON.parse(m.body) as { request_key: string }).request_key;
        perKey.set(k, (perKey.get(k) ?? 0) + 1);
      }
      expect(keys.filter((k) => !perKey.has(k))).toEqual([]);
      expect([...perKey.keys()].filter((k) => !rows.has(k))).toEqual([]);
      const duplicates = [...perKey.values()].filter((c) => c > 1).length;

      console.info(
        `[kill ${backend}] ${results.length} sent, ${ok.length} answered 202, ${cutOff.length} cut off in flight ` +
          `(${cutOffTaken} of them taken), ${unanswered.length - cutOff.length} refused after the kill; ` +
          `${unsentAtKill} outbox rows unsent at the kill; restart ${upAt - restartAt} ms, outbox empty ` +
          `${recoveredMs} ms after the restart began; ${unanswered.length} retried (all 202); ` +
          `${messages.length} messages for ${perKey.size} keys (${duplicates} published twice)`,
      );
    } finally {
      for (const kill of kills) kill();
      await ledger?.close().catch(() => undefined);
      await peek.deleteAll(topology).catch(() => undefined);
      await schema?.drop().catch(() => undefined);
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  }

  it.concurrent(
    'SQLite: every 202 survives the SIGKILL and is published after the restart',
    ({ expect }) => scenario('sqlite', expect),
    60_000,
  );
  it.concurrent(
    'PostgreSQL: every 202 survives the SIGKILL and is published after the restart',
    ({ expect }) => scenario('postgres', expect),
    60_000,
  );
});
