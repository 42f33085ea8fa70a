/**
 * The scaled-out layout the async suites run: a Stripe sandbox in the test process (so it outlives
 * every service process and can be inspected), PostgreSQL in a schema of the file's own, RabbitMQ
 * under a queue prefix of the file's own, the API in process and workers as real child processes
 * (`node --import tsx src/main.ts` with ROLE=worker), which can be SIGKILLed like a crashed pod.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import pg from 'pg';
import Stripe from 'stripe';
import { loadConfig } from '../../../src/config/index.js';
import {
  prefixedTopology as prefixTopologyNames,
  resolveTopology,
  type TopologyNames,
} from '../../../src/queue/index.js';
import { startService, type RunningService, type ServiceOptions } from '../../../src/service.js';
import { startSandbox, type FaultConfig, type Sandbox } from '../../../src/sandbox/index.js';
import type { Refund, RefundStatus } from '../../../src/store/index.js';
import { postJson } from '../../helpers/http.js';
import { captureLogger } from '../../helpers/log-capture.js';
import { POSTGRES_URL, RABBITMQ_URL } from '../../helpers/services.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** Short delays so retries finish within a test; the levels are part of the delay queues' names. */
export const TEST_RETRY_DELAYS_MS = [200, 400, 800];

export function uniqueTag(area: string): string {
  return `async_${area}_${process.pid}_${randomBytes(3).toString('hex')}`;
}

/** The names a process started with QUEUE_PREFIX=<prefix> uses (same rule as src/main.ts). */
/** The same names the service derives from QUEUE_PREFIX. */
export function prefixedTopology(prefix: string): TopologyNames {
  return resolveTopology(prefixTopologyNames(prefix));
}

export function retryQueues(topology: TopologyNames, delays = TEST_RETRY_DELAYS_MS): string[] {
  return delays.map((ms) => `${topology.retryPrefix}.${ms}ms`);
}

// ---- Stripe sandbox ----------------------------------------------------------------------------

export interface StripeStandIn {
  sandbox: Sandbox;
  url: string;
  secretKey: string;
  /** The official SDK pointed at the sandbox, for setting up and counting. */
  stripe: Stripe;
  faults(config: FaultConfig | Record<string, never>): Promise<void>;
  /** Every refund the sandbox holds, grouped by the request key we put in its metadata. */
  refundsByRequest(): Promise<Map<string, Stripe.Refund[]>>;
  close(): Promise<void>;
}

export async function startStripe(): Promise<StripeStandIn> {
  const secretKey = `sk_test_async${randomBytes(12).toString('hex')}`;
  const sandbox = await startSandbox({ secretKey, captureRequests: 0 });
  const u = new URL(sandbox.url);
  const stripe = new Stripe(secretKey, {
    host: u.hostname,
    port: Number(u.port),
    protocol: 'http',
    maxNetworkRetries: 2,
  });
  return {
    sandbox,
    url: sandbox.url,
    secretKey,
    stripe,
    async faults(config) {
      const empty = Object.keys(config).length === 0;
      const res = await fetch(`${sandbox.url}/_sandbox/faults`, {
        method: empty ? 'DELETE' : 'POST',
        headers: { 'content-type': 'application/json' },
        ...(empty ? {} : { body: JSON.stringify(config) }),
      });
      if (!res.ok) throw new Error(`faults: ${res.status} ${await res.text()}`);
    },
    async refundsByRequest() {
      const all = await stripe.refunds.list({ limit: 100 }).autoPagingToArray({ limit: 10_000 });
      const byRequest = new Map<string, Stripe.Refund[]>();
      for (const r of all) {
        const key = r.metadata?.request_id ?? '(none)';
        byRequest.set(key, [...(byRequest.get(key) ?? []), r]);
      }
      return byRequest;
    },
    close: () => sandbox.close(),
  };
}

// ---- PostgreSQL ----------------------------------------------------------------------------------

export interface PgSchema {
  schema: string;
  /** For child processes: the schema travels as the connection's search_path. */
  url: string;
  /** Creates the schema, for a process that is given it only as its search_path (it does not create it). */
  create(): Promise<void>;
  drop(): Promise<void>;
}

export function pgSchema(tag: string): PgSchema {
  const schema = tag.toLowerCase();
  const url = new URL(POSTGRES_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  return {
    schema,
    url: url.toString(),
    create: () => admin(`CREATE SCHEMA "${schema}"`),
    drop: () => admin(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`),
  };
}

// ---- the service -------------------------------------------------------------------------------

export interface Cluster {
  stripe: StripeStandIn;
  db: PgSchema;
  prefix: string;
  topology: TopologyNames;
  /** Environment shared by the API in process and every worker process. */
  env: Record<string, string>;
}

export function clusterEnv(
  stripe: StripeStandIn,
  db: Pick<PgSchema, 'url'>,
  prefix: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    NODE_ENV: 'test',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    DATABASE_URL: db.url,
    RABBITMQ_URL,
    QUEUE_PREFIX: prefix,
    STRIPE_SECRET_KEY: stripe.secretKey,
    STRIPE_API_BASE: stripe.url,
    // The API is driven by the test alone; keys and per-client limits are covered elsewhere.
    API_AUTH: 'off',
    RATE_LIMIT_PER_MINUTE: '0',
    WORKER_RETRY_DELAYS_MS: TEST_RETRY_DELAYS_MS.join(','),
    ...extra,
  };
}

export interface InProcessService extends RunningService {
  lines: string[];
}

/** The service in this process (ROLE from env, default api), on the cluster's schema and queues. */
export async function startInProcess(
  cluster: Pick<Cluster, 'env' | 'topology'> & { db?: PgSchema },
  env: Record<string, string> = {},
  opts: ServiceOptions = {},
): Promise<InProcessService> {
  const config = loadConfig({ ROLE: 'api', ...cluster.env, ...env });
  const { logger, lines } = captureLogger('info');
  const postgres = config.database.url.startsWith('postgres');
  const service = await startService(config, logger, {
    ...(postgres && cluster.db ? { storeSchema: cluster.db.schema } : {}),
    topology: cluster.topology,
    sweepIntervalMs: 500,
    ...opts,
  });
  return Object.assign(service, { lines });
}

/** A sandbox, a PostgreSQL schema, the service in this process and a RabbitMQ peek, for one test file. */
export interface ClusterRig {
  readonly tag: string;
  readonly topology: TopologyNames;
  readonly stripe: StripeStandIn;
  readonly db: PgSchema;
  readonly env: Record<string, string>;
  readonly svc: InProcessService;
  readonly peek: RabbitPeek;
}

export interface ClusterOptions {
  /** The ledger in a SQLite file of the rig's own instead of the PostgreSQL schema (which is then not used). */
  sqlite?: boolean;
  /** Something the service reaches the sandbox through (a proxy of the test's), started after the sandbox. */
  stripeVia?: (stripe: StripeStandIn) => Promise<{ url: string; close(): Promise<void> }>;
  /** Retry levels (ms) that workers of the test declare beyond TEST_RETRY_DELAYS_MS: their queues are deleted too. */
  extraRetryDelaysMs?: number[];
}

/**
 * Registers the beforeAll/afterAll most async test files share and returns the rig, filled in by
 * beforeAll. Teardown stops worker processes, the service, this file's queues, the schema (or SQLite file),
 * what stands in front of the sandbox, and the sandbox.
 */
export function useCluster(
  area: string,
  env: Record<string, string> = {},
  opts: ClusterOptions = {},
): ClusterRig {
  const tag = uniqueTag(area);
  const rig = { tag, topology: prefixedTopology(tag) } as {
    -readonly [K in keyof ClusterRig]: ClusterRig[K];
  };
  let dir: string | undefined;
  let via: { url: string; close(): Promise<void> } | undefined;
  beforeAll(async () => {
    rig.stripe = await startStripe();
    via = await opts.stripeVia?.(rig.stripe);
    rig.db = pgSchema(tag);
    if (opts.sqlite) dir = mkdtempSync(path.join(tmpdir(), `${area}-`));
    rig.env = clusterEnv(rig.stripe, rig.db, tag, {
      ...(via ? { STRIPE_API_BASE: via.url } : {}),
      ...(dir ? { DATABASE_URL: `sqlite:${path.join(dir, 'ledger.db')}` } : {}),
      ...env,
    });
    rig.svc = await startInProcess({ env: rig.env, db: rig.db, topology: rig.topology });
    rig.peek = await peekRabbit();
  });
  afterAll(async () => {
    await killAllWorkers();
    await rig.svc?.close();
    await rig.peek?.deleteAll(rig.topology, [...TEST_RETRY_DELAYS_MS, ...(opts.extraRetryDelaysMs ?? [])]);
    await rig.peek?.close();
    if (!opts.sqlite) await rig.db?.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await via?.close();
    await rig.stripe?.close();
  });
  return rig;
}

// ---- worker processes --------------------------------------------------------------------------

export interface WorkerProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  output(): string;
  /** Log lines (parsed JSON) the worker wrote. */
  logs(): Record<string, unknown>[];
  /** Refunds this worker made at Stripe and recorded ("queued refund made"). */
  refundsMade(): number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const live = new Set<WorkerProcess>();

/** Starts `src/main.ts` as its own node process (no npx/tsx wrapper, so a signal reaches the service itself). */
/** The JSON log lines in a child process's output (anything else, such as a stack trace, is skipped). */
export function jsonLogLines(out: string): Record<string, unknown>[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}

export async function spawnWorker(
  name: string,
  env: Record<string, string>,
  timeoutMs = 45_000,
): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ROLE: 'worker', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const worker: WorkerProcess = {
    name,
    child,
    pid: child.pid ?? -1,
    output: () => out,
    logs: () => jsonLogLines(out),
    refundsMade: () => worker.logs().filter((l) => l.msg === 'queued refund made').length,
    exited,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  live.add(worker);
  void exited.then(() => live.delete(worker));
  const deadline = Date.now() + timeoutMs;
  while (!/"msg":"service started"/.test(out)) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`worker ${name} exited before it started:\n${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`worker ${name} did not start in time:\n${out}`);
    }
    await sleep(50);
  }
  return worker;
}

/** Leaves no child behind, whatever a test did. */
export async function killAllWorkers(): Promise<void> {
  await Promise.all([...live].map((w) => w.kill('SIGKILL')));
}

// ---- RabbitMQ inspection -----------------------------------------------------------------------

export interface RabbitPeek {
  /** Ready messages (after the consumers are gone, that is everything the queue holds). */
  depth(queue: string): Promise<number>;
  /** Takes every ready message off the queue. */
  drain(queue: string): Promise<{ body: string; messageId: string; headers: Record<string, unknown> }[]>;
  /** Publishes raw bytes straight to a queue, as a foreign or broken producer would. */
  publishRaw(queue: string, content: Buffer, messageId: string): Promise<void>;
  deleteAll(topology: TopologyNames, delays?: number[]): Promise<void>;
  close(): Promise<void>;
}

export async function peekRabbit(): Promise<RabbitPeek> {
  const model: ChannelModel = await connect(RABBITMQ_URL);
  model.on('error', () => undefined);
  const fresh = async (): Promise<Channel> => {
    const ch = await model.createChannel();
    ch.on('error', () => undefined);
    return ch;
  };
  return {
    async depth(queue) {
      const ch = await fresh();
      try {
        return (await ch.checkQueue(queue)).messageCount;
      } finally {
        await ch.close().catch(() => undefined);
      }
    },
    async drain(queue) {
      // basic.get costs a round trip per message on a quorum queue; a consumer streams them.
      const ch = await fresh();
      const out: { body: string; messageId: string; headers: Record<string, unknown> }[] = [];
      try {
        const expected = (await ch.checkQueue(queue)).messageCount;
        if (expected === 0) return out;
        await ch.prefetch(500);
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`drained ${out.length} of ${expected} from ${queue}`)),
            30_000,
          );
          ch.consume(queue, (msg) => {
            if (!msg) return;
            out.push({
              body: msg.content.toString('utf8'),
              messageId: String(msg.properties.messageId ?? ''),
              headers: (msg.properties.headers ?? {}) as Record<string, unknown>,
            });
            ch.ack(msg);
            if (out.length >= expected) {
              clearTimeout(timer);
              resolve();
            }
          }).catch(reject);
        });
      } finally {
        await ch.close().catch(() => undefined);
      }
      return out;
    },
    async publishRaw(queue, content, messageId) {
      const ch = await model.createConfirmChannel();
      ch.on('error', () => undefined);
      try {
        ch.sendToQueue(queue, content, { persistent: true, messageId, contentType: 'application/json' });
        await ch.waitForConfirms();
      } finally {
        await ch.close().catch(() => undefined);
      }
    },
    async deleteAll(topology, delays = TEST_RETRY_DELAYS_MS) {
      const queues = [
        topology.requests,
        topology.deadLetter,
        ...retryQueues(topology, delays),
        topology.responses,
        `${topology.responses}.dlq`,
      ];
      for (const q of queues) {
        const ch = await fresh();
        await ch.deleteQueue(q).catch(() => undefined);
        await ch.close().catch(() => undefined);
      }
      const ch = await fresh();
      await ch.deleteExchange(topology.events).catch(() => undefined);
      await ch.close().catch(() => undefined);
    },
    close: () => model.close().catch(() => undefined),
  };
}

// ---- driving the API ---------------------------------------------------------------------------

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs `fn` over `items` with at most `concurrency` at a time, keeping the results in order. */
export async function pool<T, R>(items: readonly T[], concurrency: number, fn: (t: T) => Promise<R>) {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i]!);
      }
    }),
  );
  return results;
}

export async function paidIntents(apiUrl: string, count: number, amount: number): Promise<string[]> {
  return pool(Array.from({ length: count }), 8, async () => {
    const res = await postJson(`${apiUrl}/payment-intent`, {
      amount,
      currency: 'sgd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    expect(res.status, res.text).toBe(200);
    return res.json.paymentIntentId as string;
  });
}

export interface RefundOrder {
  request_id: string;
  payment_intent_id: string;
  amount: number;
}

/** `perIntent` partial refunds of `amount` on each intent, request ids `<tag>-<n>`. */
export function refundOrders(
  tag: string,
  intents: string[],
  perIntent: number,
  amount: number,
): RefundOrder[] {
  const orders: RefundOrder[] = [];
  for (let k = 0; k < perIntent; k++)
    for (const pi of intents)
      orders.push({ request_id: `${tag}-${orders.length}`, payment_intent_id: pi, amount });
  return orders;
}

export async function postRefundAsync(apiUrl: string, order: RefundOrder) {
  const res = await postJson(`${apiUrl}/refund-async`, order);
  if (res.status !== 202) throw new Error(`POST /refund-async ${res.status}: ${res.text}`);
  return res.json;
}

export async function statusCounts(service: RunningService): Promise<Record<RefundStatus, number>> {
  return service.deps.store.refunds.countByStatus();
}

/** Status counts over the given request keys only (zero for statuses none of them has). */
export async function countsOf(service: RunningService, keys: readonly string[]) {
  const counts: Record<string, number> = { queued: 0, processing: 0, succeeded: 0, failed: 0, missing: 0 };
  const rows = await Promise.all(keys.map((k) => service.deps.store.refunds.get(k)));
  for (const r of rows) {
    const s = r?.status ?? 'missing';
    counts[s] = (counts[s] ?? 0) + 1;
  }
  return counts as Record<RefundStatus | 'missing', number>;
}

export async function ledgerRows(service: RunningService, keys: readonly string[]): Promise<Refund[]> {
  const rows = await Promise.all(keys.map((k) => service.deps.store.refunds.get(k)));
  return rows.filter((r): r is Refund => r !== null);
}

/** Polls until `ok` or the deadline; returns the last value either way so the assertion shows it. */
export async function waitFor<T>(
  fn: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await fn();
  while (!ok(last) && Date.now() < deadline) {
    await sleep(intervalMs);
    last = await fn();
  }
  return last;
}

/**
 * Exactly-once at Stripe: every request key has one refund and nothing else was refunded. Returns the
 * refunds by key for further checks.
 */
export async function expectExactlyOnce(stripe: StripeStandIn, keys: readonly string[], amount: number) {
  const byRequest = await stripe.refundsByRequest();
  const twice = [...byRequest].filter(([, list]) => list.length > 1).map(([k]) => k);
  const missing = keys.filter((k) => !byRequest.has(k));
  const unexpected = [...byRequest.keys()].filter((k) => !keys.includes(k));
  expect({ twice, missing, unexpected }).toEqual({ twice: [], missing: [], unexpected: [] });
  for (const k of keys) expect(byRequest.get(k)![0]!.amount).toBe(amount);
  return byRequest;
}
