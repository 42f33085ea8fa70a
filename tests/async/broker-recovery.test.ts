/**
 * The service rides out RabbitMQ trouble that stops short of a broker restart (that one is the
 * disruptive test): its connection force-closed by the broker mid-stream, and a channel error on the
 * publish channel. Nothing crashes, the connection and topology come back, every refund is made once.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import {
  clusterEnv,
  countsOf,
  expectExactlyOnce,
  paidIntents,
  peekRabbit,
  pgSchema,
  pool,
  postRefundAsync,
  prefixedTopology,
  refundOrders,
  retryQueues,
  startInProcess,
  startStripe,
  uniqueTag,
  waitFor,
  type InProcessService,
  type PgSchema,
  type RabbitPeek,
  type StripeStandIn,
} from './support/harness.js';

const run = promisify(execFile);
const rabbitmqctl = async (...args: string[]) =>
  (await run('rabbitmqctl', ['-q', ...args], { timeout: 60_000 })).stdout;

async function ctlUsable(): Promise<boolean> {
  try {
    await rabbitmqctl('status');
    return true;
  } catch (err) {
    const message = `rabbitmqctl unusable: ${(err as Error).message}`;
    if (process.env.CI) throw new Error(`${message}; CI requires it`);
    console.warn(`\n!!! SKIPPING broker recovery tests: ${message} !!!\n`);
    return false;
  }
}

/** Force-closes this service's own connection(s) only; other test files share the broker. */
async function closeOwnConnections(connectionName: string): Promise<number> {
  const out = await rabbitmqctl('--no-table-headers', 'list_connections', 'pid', 'client_properties');
  const marker = `{"connection_name",${JSON.stringify(connectionName)}}`;
  const pids = out
    .split('\n')
    .filter((line) => line.includes(marker))
    .map((line) => line.split('\t')[0] ?? '');
  for (const pid of pids) await rabbitmqctl('close_connection', pid, 'async test: forced close');
  return pids.length;
}

const ready = (await rabbitAvailable()) && (await postgresAvailable()) && (await ctlUsable());

describe.skipIf(!ready)('RabbitMQ connection and channel failures', () => {
  const tag = uniqueTag('recover');
  const topology = prefixedTopology(tag);
  // What createDeps names the connection of a ROLE=all service in this process.
  const connectionName = `payments-all-${process.pid}`;
  let stripe: StripeStandIn;
  let db: PgSchema;
  let svc: InProcessService;
  let peek: RabbitPeek;
  const sent: string[] = [];

  beforeAll(async () => {
    stripe = await startStripe();
    db = pgSchema(tag);
    svc = await startInProcess({ env: clusterEnv(stripe, db, tag, { ROLE: 'all' }), db, topology });
    peek = await peekRabbit();
  });

  afterAll(async () => {
    await svc?.close();
    await peek?.deleteAll(topology);
    await peek?.close();
    await db?.drop();
    await stripe?.close();
  });

  it('recovers from its connection being closed twice mid-stream; each refund made once', async () => {
    await stripe.faults({ latency_ms: 30, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    const intents = await paidIntents(svc.url, 30, 10_000);
    const orders = refundOrders(`${tag}-conn`, intents, 10, 1_000);
    const keys = orders.map((o) => o.request_id);
    sent.push(...keys);

    const posting = pool(orders, 8, (o) => postRefundAsync(svc.url, o));
    let closed = 0;
    for (const threshold of [60, 160]) {
      await waitFor(
        () => countsOf(svc, keys),
        (c) => c.succeeded >= threshold,
        30_000,
        25,
      );
      closed += await closeOwnConnections(connectionName);
      await waitFor(
        async () => svc.deps.broker.isConnected(),
        (c) => c,
        30_000,
      );
    }
    await posting;
    expect(closed).toBe(2);

    const counts = await waitFor(
      () => countsOf(svc, keys),
      (c) => c.succeeded === orders.length,
      60_000,
      100,
    );
    expect(counts).toMatchObject({ succeeded: orders.length, queued: 0, processing: 0, failed: 0 });
    await expectExactlyOnce(stripe, sent, 1_000);
    expect(svc.lines.filter((l) => l.includes('RabbitMQ connected and topology declared')).length).toBe(3);
    for (const q of [topology.requests, topology.deadLetter, ...retryQueues(topology)])
      expect(await peek.depth(q), q).toBe(0);
  }, 90_000);

  it('a channel error on the publish channel does not crash the service or stop the refunds', async () => {
    await stripe.faults({});
    // A row aimed at an exchange that does not exist: RabbitMQ closes the publishing channel over it.
    const bad = await svc.deps.store.outbox.add({
      destination: `exchange:${tag}.no-such-exchange`,
      routingKey: 'anything',
      messageId: `${tag}-bad-row`,
      payload: { hello: 'world' },
    });
    svc.deps.relay.notify();
    const failures = await waitFor(
      async () => svc.lines.filter((l) => l.includes(`${tag}-bad-row`) && l.includes('publish failed')),
      (lines) => lines.length > 0,
      10_000,
    );
    expect(failures.length).toBeGreaterThan(0);
    expect(svc.lines.some((l) => l.includes('RabbitMQ publish channel closed with an error'))).toBe(true);

    const intents = await paidIntents(svc.url, 2, 10_000);
    const orders = refundOrders(`${tag}-chan`, intents, 5, 1_000);
    const keys = orders.map((o) => o.request_id);
    sent.push(...keys);
    await pool(orders, 5, (o) => postRefundAsync(svc.url, o));
    const counts = await waitFor(
      () => countsOf(svc, keys),
      (c) => c.succeeded === orders.length,
      30_000,
    );
    expect(counts.succeeded).toBe(orders.length);
    await expectExactlyOnce(stripe, sent, 1_000);
    expect(svc.deps.broker.isConnected()).toBe(true);
    // The row is kept for another try (an outbox never drops what it was given); retire it here.
    expect(await svc.deps.store.outbox.markSent([bad.id])).toBe(1);
  }, 60_000);
});
