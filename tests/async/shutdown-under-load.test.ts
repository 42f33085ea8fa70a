/**
 * Graceful shutdown of the built service (dist/src/main.bundle.mjs, what `npm start` and the image run),
 * signalled while it is busy: nothing answered 202 is lost, nothing is refunded twice, the process stops
 * cleanly (exit code 0) within the 25 s the README promises, and a request that comes after the signal gets
 * an answer or a refused connection, never a hang.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent } from 'node:http';
import { createServer, connect as tcpConnect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { createStore, type Store } from '../../src/store/index.js';
import { POSTGRES_URL, postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import {
  clusterEnv,
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
import { buildIntoTemp, killAllBuilt, post, startBuilt, type Answer, type Build } from './support/built.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());
/** What the README promises between the signal and the exit. */
const SHUTDOWN_BUDGET_MS = 25_000;
const REFUNDS_PATH = { method: 'POST', path_prefix: '/v1/refunds' };

async function paidIntents(url: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await post(
      `${url}/payment-intent`,
      { amount: 100_000, currency: 'sgd', payment_method: 'pm_card_visa', confirm: true },
      false,
    );
    expect(r.status, r.body).toBe(200);
    ids.push((JSON.parse(r.body) as { paymentIntentId: string }).paymentIntentId);
  }
  return ids;
}

// ---- the rig ------------------------------------------------------------------------------------

describe.skipIf(!ready)('SIGTERM under load (the built process)', () => {
  const tag = uniqueTag('stop');
  const topology = prefixedTopology(tag);
  let build: Build;
  let stripe: StripeStandIn;
  let db: PgSchema;
  let env: Record<string, string>;
  /** The ledger as the test reads it (no relay of its own: what reaches RabbitMQ was sent by the service). */
  let store: Store;
  let peek: RabbitPeek;
  const tempDirs: string[] = [];

  beforeAll(async () => {
    build = await buildIntoTemp('stop-build-');
    stripe = await startStripe();
    db = pgSchema(tag);
    await db.create();
    env = clusterEnv(stripe, db, tag);
    store = await createStore({ url: POSTGRES_URL, schema: db.schema, logger: pino({ level: 'silent' }) });
    peek = await peekRabbit();
  }, 120_000);

  afterAll(async () => {
    killAllBuilt();
    await store?.close();
    await peek?.deleteAll(topology);
    await peek?.close();
    await db?.drop();
    await stripe?.close();
    build?.remove();
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });

  async function requestKeysOnQueue(): Promise<Set<string>> {
    const messages = await peek.drain(topology.requests);
    return new Set(messages.map((m) => (JSON.parse(m.body) as { request_key: string }).request_key));
  }

  it('API: SIGTERM in a burst of POST /refund-async loses no 202 and stops at once', async () => {
    const api = await startBuilt(build.main, { ...env, ROLE: 'api' });
    const intents = await paidIntents(api.url, 10);
    const results: (Answer & { key: string; sentAt: number })[] = [];
    let sending = true;
    let n = 0;
    const keepAlive = new Agent({ keepAlive: true, maxSockets: 12 });
    // Twelve clients on kept-alive connections and four opening a connection per request, sending until
    // after the process has gone.
    const senders = Array.from({ length: 16 }, async (_, s) => {
      while (sending) {
        const key = `${tag}-burst-${n++}`;
        const sentAt = Date.now();
        const answer = await post(
          `${api.url}/refund-async`,
          { request_id: key, payment_intent_id: intents[n % intents.length], amount: 10 },
          s < 12 ? keepAlive : false,
        );
        results.push({ key, sentAt, ...answer });
        // Refused: the port is closed; do not spin.
        if (answer.error === 'ECONNREFUSED') await sleep(20);
      }
    });
    await sleep(500);
    const stopAt = api.signal('SIGTERM');
    const exit = await api.exited;
    await sleep(300);
    sending = false;
    await Promise.all(senders);
    keepAlive.destroy();

    const accepted = results.filter((r) => r.status === 202).map((r) => r.key);
    const acceptedAfterStop = results.filter((r) => r.status === 202 && r.sentAt >= stopAt).length;
    const others = results.filter((r) => r.status !== 202);
    const outcomes: Record<string, number> = {};
    for (const r of others) {
      const k = r.error ?? `${r.status} ${r.contentType}`;
      outcomes[k] = (outcomes[k] ?? 0) + 1;
    }
    expect(exit.code).toBe(0);
    expect(exit.at - stopAt).toBeLessThan(SHUTDOWN_BUDGET_MS);
    expect(accepted.length).toBeGreaterThan(0);

    // Every 202 is in the ledger and its message reached RabbitMQ (the outbox is empty).
    const rows = await Promise.all(accepted.map((k) => store.refunds.get(k)));
    expect(accepted.filter((_, i) => rows[i]?.status !== 'queued')).toEqual([]);
    expect(await store.outbox.pendingCount()).toBe(0);
    const onQueue = await requestKeysOnQueue();
    expect(accepted.filter((k) => !onQueue.has(k))).toEqual([]);

    // Anything else was a clean refusal: a 503 problem, a refused connection, or a kept-alive connection
    // closed under a request it had not read; never a hang. Whatever the ledger took is on the queue too.
    for (const r of others) {
      if (r.error) expect(['ECONNREFUSED', 'ECONNRESET']).toContain(r.error);
      else
        expect([r.status, r.contentType]).toEqual([503, expect.stringContaining('application/problem+json')]);
    }
    const erred = others.map((r) => r.key);
    const erredRows = await Promise.all(erred.map((k) => store.refunds.get(k)));
    expect(erred.filter((k, i) => erredRows[i] && !onQueue.has(k))).toEqual([]);
    console.info(
      `[stop] API under load: ${accepted.length} accepted (${acceptedAfterStop} after the signal), ` +
        `exit ${exit.code} ${exit.at - stopAt} ms after SIGTERM; otherwise ${JSON.stringify(outcomes)}`,
    );
  }, 60_000);

  it('API: SIGTERM while RabbitMQ is unreachable keeps the outbox rows for the next process', async () => {
    // RabbitMQ through a proxy the test can cut: connections dropped, new ones refused.
    const sockets = new Set<Socket>();
    let cut = false;
    const proxy: Server = createServer((client) => {
      if (cut) return void client.destroy();
      const upstream = tcpConnect(5672, '127.0.0.1');
      sockets.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      const end = () => (client.destroy(), upstream.destroy());
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const { port } = proxy.address() as AddressInfo;
    try {
      const api = await startBuilt(build.main, {
        ...env,
        ROLE: 'api',
        RABBITMQ_URL: `amqp://guest:guest@127.0.0.1:${port}`,
      });
      const intents = await paidIntents(api.url, 2);
      const pendingBefore = await store.outbox.pendingCount();
      cut = true;
      for (const s of sockets) s.destroy();
      const keys = Array.from({ length: 10 }, (_, i) => `${tag}-cut-${i}`);
      for (const [i, key] of keys.entries()) {
        const r = await post(
          `${api.url}/refund-async`,
          { request_id: key, payment_intent_id: intents[i % 2], amount: 10 },
          false,
        );
        expect(r.status, r.body).toBe(202);
      }
      const stopAt = api.signal('SIGTERM');
      const exit = await api.exited;
      expect(exit.code).toBe(0);
      expect(exit.at - stopAt).toBeLessThan(SHUTDOWN_BUDGET_MS);
      expect(await store.outbox.pendingCount()).toBe(pendingBefore + keys.length);

      const next = await startBuilt(build.main, { ...env, ROLE: 'api' });
      const deadline = Date.now() + 15_000;
      while ((await store.outbox.pendingCount()) > 0 && Date.now() < deadline) await sleep(50);
      next.signal('SIGTERM');
      expect((await next.exited).code).toBe(0);
      expect(await store.outbox.pendingCount()).toBe(0);
      const onQueue = await requestKeysOnQueue();
      expect(keys.filter((k) => !onQueue.has(k))).toEqual([]);
    } finally {
      proxy.close();
      for (const s of sockets) s.destroy();
    }
  }, 60_000);

  it('a SIGTERM during start-up (SQLite migrations) stops the process once they are done: stopped before ready', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'stop-early-'));
    tempDirs.push(dir);
    // The migrations run synchronously: the signal arrives but is dispatched only after them; it then stops the start.
    const proc = await startBuilt(
      build.main,
      { ...env, ROLE: 'all', RABBITMQ_URL: '', DATABASE_URL: `sqlite:${path.join(dir, 'ledger.db')}` },
      { msg: 'store migration applied', signal: 'SIGTERM' },
    );
    const exit = await Promise.race([proc.exited, sleep(SHUTDOWN_BUDGET_MS).then(() => null)]);
    expect(exit?.code).toBe(0);
    // 'exit' can come before the last of stdout is read.
    const said = () =>
      proc.logs().some((l) => /^stopped before ready: SIGTERM arrived during start-up/.test(String(l.msg)));
    for (let i = 0; i < 100 && !said(); i++) await sleep(20);
    expect(said()).toBe(true);
    // The migrations it ran are whole: the next start finds the ledger up to date and starts.
    const next = await startBuilt(build.main, {
      ...env,
      ROLE: 'all',
      RABBITMQ_URL: '',
      DATABASE_URL: `sqlite:${path.join(dir, 'ledger.db')}`,
    });
    expect((await fetch(`${next.url}/healthz`)).status).toBe(200);
    next.signal('SIGTERM');
    expect((await next.exited).code).toBe(0);
  }, 60_000);

  it('ROLE=all, in-process queue: SIGINT (then SIGTERM) mid-refunds stops HTTP at once; the next start finishes every refund once', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'stop-all-'));
    tempDirs.push(dir);
    const embedded = {
      ...env,
      ROLE: 'all',
      RABBITMQ_URL: '',
      DATABASE_URL: `sqlite:${path.join(dir, 'ledger.db')}`,
      WORKER_PREFETCH: '8',
    };
    const first = await startBuilt(build.main, embedded);
    const intents = await paidIntents(first.url, 5);
    await stripe.faults({ latency_ms: 1_500, match: REFUNDS_PATH });
    const asyncKeys = Array.from({ length: 30 }, (_, i) => `${tag}-all-${i}`);
    for (const [i, key] of asyncKeys.entries()) {
      const r = await post(
        `${first.url}/refund-async`,
        { request_id: key, payment_intent_id: intents[i % 5], amount: 10 },
        false,
      );
      expect(r.status, r.body).toBe(202);
    }
    const syncKey = `${tag}-all-sync`;
    const sync = post(
      `${first.url}/refund`,
      { request_id: syncKey, payment_intent_id: intents[0], amount: 10 },
      false,
    );
    await sleep(300);
    const stopAt = first.signal('SIGINT');
    await sleep(100);
    first.signal('SIGTERM');
    await sleep(200);
    // The queue is still draining (Stripe answers in 1.5 s), but a new connection is no longer taken.
    const late = await post(
      `${first.url}/refund-async`,
      { request_id: `${tag}-all-late`, payment_intent_id: intents[1], amount: 10 },
      false,
    );
    const exit = await first.exited;
    expect((await sync).status).toBe(200);
    expect(late.error).toBe('ECONNREFUSED');
    expect(exit.code).toBe(0);
    expect(exit.at - stopAt).toBeLessThan(SHUTDOWN_BUDGET_MS);
    expect(first.logs().some((l) => l.msg === 'already shutting down; send SIGKILL to stop at once')).toBe(
      true,
    );

    await stripe.faults({});
    const second = await startBuilt(build.main, embedded);
    const keys = [...asyncKeys, syncKey];
    const statuses = async () =>
      Promise.all(
        keys.map(async (k) => {
          const res = await fetch(`${second.url}/refund-status/${k}`);
          return ((await res.json()) as { status?: string }).status;
        }),
      );
    const deadline = Date.now() + 15_000;
    let last = await statuses();
    while (last.some((s) => s !== 'succeeded') && Date.now() < deadline) {
      await sleep(100);
      last = await statuses();
    }
    second.signal('SIGTERM');
    expect((await second.exited).code).toBe(0);
    expect(last.filter((s) => s !== 'succeeded')).toEqual([]);
    const byRequest = await stripe.refundsByRequest();
    expect(keys.filter((k) => byRequest.get(k)?.length !== 1)).toEqual([]);
  }, 60_000);
});
