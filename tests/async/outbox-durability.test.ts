/**
 * An accepted refund is durable before the client hears 202, whatever the queue is doing:
 * - RabbitMQ unreachable (RABBITMQ_URL at a closed port): the API still answers 202, the requests wait
 *   in the outbox, and a service that can reach RabbitMQ later refunds each exactly once;
 * - embedded mode (in-process queue, nothing durable in it): refunds left unfinished by a previous run
 *   are re-queued from the ledger at start.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson } from '../helpers/http.js';
import { freePort } from '../helpers/processes.js';
import { postgresAvailable, RABBITMQ_URL, rabbitAvailable } from '../helpers/services.js';
import {
  clusterEnv,
  countsOf,
  expectExactlyOnce,
  ledgerRows,
  paidIntents,
  peekRabbit,
  pgSchema,
  pool,
  postRefundAsync,
  prefixedTopology,
  refundOrders,
  startInProcess,
  startStripe,
  uniqueTag,
  waitFor,
  type InProcessService,
  type StripeStandIn,
} from './support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());

describe.skipIf(!ready)('RabbitMQ unreachable', () => {
  const tag = uniqueTag('down');
  const topology = prefixedTopology(tag);
  const db = pgSchema(tag);
  let stripe: StripeStandIn;
  const services: InProcessService[] = [];

  beforeAll(async () => {
    stripe = await startStripe();
  });

  afterAll(async () => {
    for (const s of services) await s.close().catch(() => undefined);
    const peek = await peekRabbit();
    await peek.deleteAll(topology);
    await peek.close();
    await db.drop();
    await stripe?.close();
  });

  it('accepts refunds into the outbox, and a later start with RabbitMQ refunds each exactly once', async () => {
    const closedPort = await freePort();
    const env = clusterEnv(stripe, db, tag, {
      ROLE: 'all',
      RABBITMQ_URL: `amqp://guest:guest@127.0.0.1:${closedPort}`,
    });
    const offline = await startInProcess({ env, db, topology });
    services.push(offline);
    expect(offline.deps.broker.isConnected()).toBe(false);

    const intents = await paidIntents(offline.url, 5, 10_000);
    const orders = refundOrders(tag, intents, 4, 2_500);
    const keys = orders.map((o) => o.request_id);
    const answers = await pool(orders, 10, (o) => postRefundAsync(offline.url, o));
    expect(answers.map((a) => [a.success, a.status])).toEqual(orders.map(() => [true, 'queued']));

    // They wait in the outbox (one row each), the ledger says queued, and Stripe has seen nothing.
    await new Promise((r) => setTimeout(r, 500));
    expect(await offline.deps.store.outbox.pendingCount()).toBe(orders.length);
    expect(await countsOf(offline, keys)).toMatchObject({ queued: orders.length });
    const one = await getJson(`${offline.url}/refund-status/${keys[0]}`);
    expect(one.json).toMatchObject({ status: 'queued', refund_id: null });
    expect((await stripe.refundsByRequest()).size).toBe(0);
    await offline.close();

    const online = await startInProcess({ env: { ...env, RABBITMQ_URL }, db, topology });
    services.push(online);
    const counts = await waitFor(
      () => countsOf(online, keys),
      (c) => c.succeeded === orders.length,
      30_000,
    );
    expect(counts.succeeded).toBe(orders.length);
    await expectExactlyOnce(stripe, keys, 2_500);
    expect(
      await waitFor(
        () => online.deps.store.outbox.pendingCount(),
        (n) => n === 0,
        10_000,
      ),
    ).toBe(0);
  }, 60_000);
});

describe('embedded mode (in-process queue)', () => {
  const tag = uniqueTag('embedded');
  const topology = prefixedTopology(tag);
  let stripe: StripeStandIn;
  let dir: string;
  const services: InProcessService[] = [];

  beforeAll(async () => {
    stripe = await startStripe();
    dir = mkdtempSync(path.join(tmpdir(), 'async-embedded-'));
  });

  afterAll(async () => {
    for (const s of services) await s.close().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
    await stripe?.close();
  });

  it('says so at start and re-queues refunds a previous run left unfinished', async () => {
    const env = {
      ...clusterEnv(stripe, { url: `sqlite:${path.join(dir, 'ledger.db')}` }, tag),
      RABBITMQ_URL: '',
    };
    // A run whose worker cannot reach Stripe: every refund fails its first attempt and waits in the
    // in-process retry queue for a minute, then the process goes away with those messages.
    const first = await startInProcess(
      { env, topology },
      { ROLE: 'all', WORKER_RETRY_DELAYS_MS: '60000', WORKER_MAX_ATTEMPTS: '50' },
    );
    services.push(first);
    expect(first.deps.broker.kind).toBe('memory');
    expect(first.lines.some((l) => l.includes('refunds are queued in process'))).toBe(true);
    const intents = await paidIntents(first.url, 3, 9_000);
    const orders = refundOrders(tag, intents, 3, 3_000);
    const keys = orders.map((o) => o.request_id);
    await stripe.faults({ error_rate: 1, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    await pool(orders, 5, (o) => postRefundAsync(first.url, o));
    const tried = await waitFor(
      () => ledgerRows(first, keys),
      (rows) => rows.length === keys.length && rows.every((r) => r.attempts >= 1),
      20_000,
    );
    // Tried, and not final: waiting for its retry or still inside the SDK's own retries.
    expect(tried.map((r) => r.attempts >= 1 && ['pending', 'processing'].includes(r.status))).toEqual(
      keys.map(() => true),
    );
    await first.close();
    await stripe.faults({});
    expect((await stripe.refundsByRequest()).size).toBe(0);

    const second = await startInProcess({ env, topology }, { ROLE: 'all' });
    services.push(second);
    const counts = await waitFor(
      () => countsOf(second, keys),
      (c) => c.succeeded === orders.length,
      20_000,
    );
    expect(counts.succeeded).toBe(orders.length);
    expect(second.lines.some((l) => l.includes('re-queued refunds that had no live message'))).toBe(true);
    await expectExactlyOnce(stripe, keys, 3_000);
  }, 60_000);
});

describe.skipIf(!ready)('graceful stop', () => {
  const tag = uniqueTag('stop');
  const topology = prefixedTopology(tag);
  const db = pgSchema(tag);
  let stripe: StripeStandIn;

  beforeAll(async () => {
    stripe = await startStripe();
  });

  afterAll(async () => {
    const peek = await peekRabbit();
    await peek.deleteAll(topology);
    await peek.close();
    await db.drop();
    await stripe?.close();
  });

  it('lets in-flight refunds finish and publishes their outcomes before it closes', async () => {
    const env = clusterEnv(stripe, db, tag, { ROLE: 'all', WORKER_PREFETCH: '8' });
    const svc = await startInProcess({ env, db, topology });
    const intents = await paidIntents(svc.url, 4, 10_000);
    const orders = refundOrders(tag, intents, 10, 1_000);
    const keys = orders.map((o) => o.request_id);
    await stripe.faults({ latency_ms: 300, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    await pool(orders, 10, (o) => postRefundAsync(svc.url, o));
    await waitFor(
      () => countsOf(svc, keys),
      (c) => c.succeeded >= 8,
      20_000,
      20,
    );
    await svc.close(); // what SIGTERM runs

    // Read what the stopped service left behind, straight from PostgreSQL and RabbitMQ.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const statuses = await client.query<{ status: string; n: string }>(
      'SELECT status, count(*) AS n FROM refunds GROUP BY status',
    );
    const unsent = await client.query<{ n: string }>(
      'SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL',
    );
    await client.end();
    const byStatus = Object.fromEntries(statuses.rows.map((r) => [r.status, Number(r.n)]));
    expect(byStatus.processing ?? 0).toBe(0);
    expect(Number(unsent.rows[0]!.n)).toBe(0);

    const made = [...(await stripe.refundsByRequest()).keys()];
    expect(made.length).toBe(byStatus.succeeded);
    const peek = await peekRabbit();
    try {
      const outcomes = (await peek.drain(topology.responses)).map(
        (m) => (JSON.parse(m.body) as { request_id: string }).request_id,
      );
      expect(new Set(outcomes)).toEqual(new Set(made));
      // The refunds not started are still queued, their messages waiting for the next worker.
      expect(await peek.depth(topology.requests)).toBe(byStatus.queued);
    } finally {
      await peek.close();
    }
  }, 60_000);
});
