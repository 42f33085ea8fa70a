/**
 * Test support for the queue suites: reaching the shared RabbitMQ, isolating each file under its
 * own name prefix, driving rabbitmqctl, and cleaning up only what the file created.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import { pino } from 'pino';
import { afterAll, afterEach, it } from 'vitest';
import {
  createRabbitBroker,
  type Broker,
  type RabbitBrokerOptions,
  type TopologyNames,
} from '../../../src/queue/index.js';
import { createOutboxRelay, type OutboxRelay } from '../../../src/queue/outbox-relay.js';
import { createStore, type Store } from '../../../src/store/index.js';
import { RABBITMQ_URL } from '../../helpers/services.js';

const run = promisify(execFile);

/**
 * The broker every test uses: TEST_RABBITMQ_URL, as the README says, read in one place (tests/helpers/services.ts).
 * This file read RABBITMQ_URL, so TEST_RABBITMQ_URL moved only half the suites, and the service's own variable,
 * set in a developer's shell for `npm start`, pointed the other half at that broker.
 */
export const RABBIT_URL = RABBITMQ_URL;

export interface RabbitProbe {
  ok: boolean;
  reason?: string;
}

/**
 * Whether RabbitMQ answers. Outside CI a missing broker skips the suites with a loud warning; in
 * CI it registers a failing test instead, so a broken environment can never pass silently.
 */
export async function probeRabbit(suite: string, needsCtl = false): Promise<RabbitProbe> {
  let probe: RabbitProbe = { ok: true };
  try {
    const conn = await connect(RABBIT_URL, { timeout: 3_000 });
    conn.on('error', () => {});
    await conn.close();
  } catch (err) {
    probe = {
      ok: false,
      reason: `RabbitMQ not reachable at ${new URL(RABBIT_URL).host}: ${(err as Error).message}`,
    };
  }
  if (probe.ok && needsCtl) {
    try {
      await run('rabbitmqctl', ['-q', 'status'], { timeout: 30_000 });
    } catch (err) {
      probe = { ok: false, reason: `rabbitmqctl unusable: ${(err as Error).message}` };
    }
  }
  if (!probe.ok) {
    if (process.env.CI) {
      it(`${suite}: RabbitMQ is required in CI`, () => {
        throw new Error(probe.reason);
      });
    } else {
      console.warn(`\n!!! SKIPPING ${suite}: ${probe.reason} !!!\n`);
    }
  }
  return probe;
}

/** A prefix no other test file (or run) shares, so parallel files never see each other's queues. */
export function uniquePrefix(area: string): string {
  return `qtest.${area}.${process.pid}.${randomBytes(3).toString('hex')}`;
}

export function topologyFor(prefix: string): TopologyNames {
  return {
    requests: `${prefix}.requests`,
    responses: `${prefix}.responses`,
    deadLetter: `${prefix}.requests.dlq`,
    retryPrefix: `${prefix}.requests.retry`,
    events: `${prefix}.events`,
  };
}

export async function rabbitctl(...args: string[]): Promise<string> {
  const { stdout } = await run('rabbitmqctl', ['-q', ...args], { timeout: 60_000 });
  return stdout;
}

export interface QueueInfo {
  name: string;
  type: string;
  durable: boolean;
  arguments: Record<string, unknown>;
}

export async function listQueues(prefix: string): Promise<QueueInfo[]> {
  const out = await rabbitctl('list_queues', 'name', 'type', 'durable', 'arguments', '--formatter', 'json');
  const rows = JSON.parse(out) as {
    name: string;
    type: string;
    durable: boolean;
    arguments: [string, string, unknown][];
  }[];
  return rows
    .filter((row) => row.name.startsWith(prefix))
    .map((row) => ({
      ...row,
      arguments: Object.fromEntries(row.arguments.map(([key, , value]) => [key, value])),
    }));
}

export async function listExchanges(
  prefix: string,
): Promise<{ name: string; type: string; durable: boolean }[]> {
  const out = await rabbitctl('list_exchanges', 'name', 'type', 'durable', '--formatter', 'json');
  return (JSON.parse(out) as { name: string; type: string; durable: boolean }[]).filter((row) =>
    row.name.startsWith(prefix),
  );
}

/** Force-closes only the connections that carry our connection_name; other suites share the broker. */
export async function closeConnectionsNamed(connectionName: string): Promise<number> {
  // close_connection wants the Erlang pid, which only the table output prints in a usable form.
  const out = await rabbitctl('--no-table-headers', 'list_connections', 'pid', 'client_properties');
  const marker = `{"connection_name",${JSON.stringify(connectionName)}}`;
  const pids = out
    .split('\n')
    .filter((line) => line.includes(marker))
    .map((line) => line.split('\t')[0] ?? '');
  for (const pid of pids) await rabbitctl('close_connection', pid, 'queue test: forced close');
  return pids.length;
}

/** A plain amqplib connection for looking at the broker from the outside. */
export async function openAdmin(): Promise<{ conn: ChannelModel; channel: () => Promise<Channel> }> {
  const conn = await connect(RABBIT_URL);
  conn.on('error', () => {});
  return {
    conn,
    channel: async () => {
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      return ch;
    },
  };
}

/** Deletes every queue and exchange whose name starts with `prefix`. */
export async function deleteEverything(prefix: string): Promise<void> {
  const [queues, exchanges] = [await listQueues(prefix), await listExchanges(prefix)];
  if (queues.length === 0 && exchanges.length === 0) return;
  const admin = await openAdmin();
  try {
    for (const queue of queues) {
      const ch = await admin.channel();
      await ch.deleteQueue(queue.name).catch(() => {});
      await ch.close().catch(() => {});
    }
    for (const exchange of exchanges) {
      const ch = await admin.channel();
      await ch.deleteExchange(exchange.name).catch(() => {});
      await ch.close().catch(() => {});
    }
  } finally {
    await admin.conn.close();
  }
}

export interface RelayRig {
  names: TopologyNames;
  store: Store;
  broker: Broker;
  relay: OutboxRelay;
  /** Stops the relay, closes the broker and the store, and deletes the store's directory. */
  close(): Promise<void>;
}

/**
 * An outbox relay from a SQLite store (in a temp dir) to a RabbitMQ broker on `prefix`'s topology, with retry
 * timings short enough for a test. Neither is started: the test starts them when its scene is set.
 */
export async function relayRig(
  prefix: string,
  opts: { maxBackoffMs: number; broker?: Partial<RabbitBrokerOptions> },
): Promise<RelayRig> {
  const names = topologyFor(prefix);
  const dir = mkdtempSync(join(tmpdir(), 'rq-relay-'));
  const store = await createStore({ url: `sqlite:${join(dir, 'db.sqlite')}` });
  const broker = createRabbitBroker({
    url: RABBIT_URL,
    topology: names,
    connectionName: prefix,
    ...opts.broker,
  });
  const relay = createOutboxRelay({
    store,
    broker,
    logger: pino({ level: 'silent' }),
    idleMs: 20,
    backoffMs: 50,
    maxBackoffMs: opts.maxBackoffMs,
  });
  return {
    names,
    store,
    broker,
    relay,
    async close() {
      await relay.stop();
      await broker.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls until `check` passes; the deadline only bounds a hang, it asserts nothing about speed. */
export async function eventually<T>(
  check: () => T | Promise<T>,
  what: string,
  timeoutMs = 15_000,
): Promise<Exclude<T, false | null | undefined>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== false && value !== null && value !== undefined)
      return value as Exclude<T, false | null | undefined>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A promise the test resolves by hand, to hold handlers in flight. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/**
 * The brokers of one test file: `prefix()` names a fresh topology under `filePrefix` (`part` between, when given),
 * `keep(broker)` closes it after the test that opened it, and what the file declared is deleted after its last test
 * (when RabbitMQ was reached at all).
 */
export function brokersOfFile(filePrefix: string, rabbit: RabbitProbe) {
  let counter = 0;
  const opened: Broker[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((broker) => broker.close()));
  });
  afterAll(async () => {
    if (rabbit.ok) await deleteEverything(filePrefix);
  });
  return {
    prefix: (part?: string) => `${filePrefix}.${part === undefined ? '' : `${part}.`}${++counter}`,
    keep<B extends Broker>(broker: B): B {
      opened.push(broker);
      return broker;
    },
  };
}
