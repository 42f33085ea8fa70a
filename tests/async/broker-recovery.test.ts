/**
 * The service rides out RabbitMQ trouble that stops short of a broker restart (that one is the
 * disruptive test): its connection force-closed by the broker mid-stream, and a channel error on the
 * publish channel. Nothing crashes, the connection and topology come back, every refund is made once.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import {
  countsOf,
  expectExactlyOnce,
  paidIntents,
  pool,
  postRefundAsync,
  refundOrders,
  retryQueues,
  useCluster,
  waitFor,
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

/**
 * Force-closes this service's own connections only (the one it publishes on, and the one it consumes on, named
 * `<name>/consume`); other test files share the broker.
 */
async function closeOwnConnections(connectionName: string): Promise<number> {
  const out = await rabbitmqctl('--no-table-headers', 'list_connections', 'pid', 'client_properties');
  const markers = [connectionName, `${connectionName}/consume`].map(
    (name) => `{"connection_name",${JSON.stringify(name)}}`,
  );
  const pids = out
    .split('\n')
    .filter((line) => markers.some((marker) => line.includes(marker)))
    .map((line) => line.split('\t')[0] ?? '');
  for (const pid of pids) await rabbitmqctl('close_connection', pid, 'async test: forced close');
  return pids.length;
}

const ready = (await rabbitAvailable()) && (await postgresAvailable()) && (await ctlUsable());

describe.skipIf(!ready)('RabbitMQ connection and channel failures', () => {
  // What createDeps names the connection of a ROLE=all service in this process.
  const connectionName = `payments-all-${process.pid}`;
  const sent: string[] = [];

  const rig = useCluster('recover', { ROLE: 'all' });

  it('recovers from its connection being closed twice mid-stream; each refund made once', async () => {
    await rig.stripe.faults({ latency_ms: 30, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    const intents = await paidIntents(rig.svc.url, 30, 10_000);
    const orders = refundOrders(`${rig.tag}-conn`, intents, 10, 1_000);
    const keys = orders.map((o) => o.request_id);
    sent.push(...keys);

    const posting = pool(orders, 8, (o) => postRefundAsync(rig.svc.url, o));
    let closed = 0;
    for (const threshold of [60, 160]) {
      await waitFor(
        () => countsOf(rig.svc, keys),
        (c) => c.succeeded >= threshold,
        30_000,
        25,
      );
      closed += await closeOwnConnections(connectionName);
      await waitFor(
        async () => rig.svc.deps.broker.isConnected(),
        (c) => c,
        30_000,
      );
    }
    await posting;
    expect(closed).toBe(4); // twice both connections

    const counts = await waitFor(
      () => countsOf(rig.svc, keys),
      (c) => c.succeeded === orders.length,
      60_000,
      100,
    );
    expect(counts).toMatchObject({ succeeded: orders.length, queued: 0, processing: 0, failed: 0 });
    await expectExactlyOnce(rig.stripe, sent, 1_000);
    expect(rig.svc.lines.filter((l) => l.includes('RabbitMQ connected and topology declared')).length).toBe(
      3,
    );
    for (const q of [rig.topology.requests, rig.topology.deadLetter, ...retryQueues(rig.topology)])
      expect(await rig.peek.depth(q), q).toBe(0);
  }, 90_000);

  it('a channel error on the publish channel does not crash the service or stop the refunds', async () => {
    await rig.stripe.faults({});
    // A row aimed at an exchange that does not exist: RabbitMQ closes the publishing channel over it.
    const bad = await rig.svc.deps.store.outbox.add({
      destination: `exchange:${rig.tag}.no-such-exchange`,
      routingKey: 'anything',
      messageId: `${rig.tag}-bad-row`,
      payload: { hello: 'world' },
    });
    rig.svc.deps.relay.notify();
    const failures = await waitFor(
      async () =>
        rig.svc.lines.filter((l) => l.includes(`${rig.tag}-bad-row`) && l.includes('publish failed')),
      (lines) => lines.length > 0,
      10_000,
    );
    expect(failures.length).toBeGreaterThan(0);
    expect(rig.svc.lines.some((l) => l.includes('RabbitMQ publish channel closed with an error'))).toBe(true);

    const intents = await paidIntents(rig.svc.url, 2, 10_000);
    const orders = refundOrders(`${rig.tag}-chan`, intents, 5, 1_000);
    const keys = orders.map((o) => o.request_id);
    sent.push(...keys);
    await pool(orders, 5, (o) => postRefundAsync(rig.svc.url, o));
    const counts = await waitFor(
      () => countsOf(rig.svc, keys),
      (c) => c.succeeded === orders.length,
      30_000,
    );
    expect(counts.succeeded).toBe(orders.length);
    await expectExactlyOnce(rig.stripe, sent, 1_000);
    expect(rig.svc.deps.broker.isConnected()).toBe(true);
    // The row is kept for another try (an outbox never drops what it was given); retire it here.
    expect(await rig.svc.deps.store.outbox.markSent([bad.id])).toBe(1);
  }, 60_000);
});
