/**
 * `npm run bench`: the service (built JS, production-like settings) against two baselines built in the
 * same run on the same machine, with the load generator in separate processes. See bench/README.md.
 *
 * Options (env or flags): --duration=10 (s per load scenario), --connections=32, --drain=10000,
 * --stores=sqlite,postgres, --no-auth-run, --keep (temp files), --out=bench/results.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSnapshot, primeCodeCache, snapshotPaths, type AppSnapshot } from './lib/build.js';
import { fillQueuedRefunds } from './lib/fill.js';
import { createPgDatabase, dropPgDatabase, postgresLedger, sqliteLedger, type Ledger } from './lib/ledger.js';
import { runLoad } from './lib/load.js';
import type { LoadKind, LoadOutput } from './lib/load-types.js';
import { machineInfo } from './lib/machine.js';
import { freePort, sampleRss, startProcess, stopProcess, waitReady, type Proc } from './lib/procs.js';
import { cpuSample, cpuShare, mainThreadTicks, processTicks, US_PER_TICK } from './lib/cpu.js';
import { createProgress } from './lib/progress.js';
import { deletePrefixed, queueDepth } from './lib/rabbit.js';
import { PRODUCTION_NODE_OPTIONS, seedIntents, serviceEnv, waitForSandbox } from './lib/service.js';
import { writeReport } from './lib/report.js';
import type { BenchResults, DrainRun, DurabilityCheck, LoadScenario, ReadyTime } from './lib/results.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function option(name: string, fallback: string): string {
  const flag = process.argv.find((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (flag) return flag.includes('=') ? flag.slice(flag.indexOf('=') + 1) : 'true';
  return process.env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`] ?? fallback;
}

const DURATION = Number(option('duration', '10'));
const WARMUP = Number(option('warmup', '2'));
const CONNECTIONS = Number(option('connections', '32'));
const ROUNDS = Number(option('rounds', '2'));
const DRAIN_REFUNDS = Number(option('drain', '10000'));
const STORES = option('stores', 'sqlite,postgres').split(',') as ('sqlite' | 'postgres')[];
const AUTH_RUN = option('no-auth-run', 'false') !== 'true';
const KEEP = option('keep', 'false') === 'true';
const OUT_DIR = path.resolve(ROOT, option('out', 'bench/results'));
/** Reuse a snapshot from an earlier run (development of the bench itself); default: build a fresh one. */
const APP_DIR = option('app', '');
/** Extra node flags for service processes only (e.g. heap limits); default: none, as `node dist/src/main.bundle.mjs`. */
// The service as deployed (PRODUCTION_NODE_OPTIONS); `--service-node-options=` (empty) measures Node's defaults instead.
const SERVICE_NODE_OPTIONS = option('service-node-options', PRODUCTION_NODE_OPTIONS)
  .split(' ')
  .filter(Boolean);
const RABBITMQ_URL = option('rabbitmq-url', 'amqp://guest:guest@127.0.0.1:5672');
const PG_ADMIN_URL = option('pg-url', 'postgres://postgres@127.0.0.1:5432/test');
// Paid intents the refund and GET scenarios use round-robin. The over-refund guard sums an intent's refunds
// on every acceptance, so the scenario's refunds per intent set part of what POST /refund-async costs: with
// 256 intents (up to and including benchmx0rj3js) a run refunded each intent 60-80 times and the sum kept
// growing within the run; with 2048 it stays around ten, closer to real payments (one or two refunds).
const SEED_INTENTS = 2048;
const STATUS_IDS = 1000;

const TARGET_PROXY_RATIO = 0.8;
const TARGET_ASYNC_RATIO = 0.6;
const TARGET_DRAIN_PER_SEC = 500;
const TARGET_RSS_MB = 150;
const TARGET_READY_MS = 1000;

const runId = `bench${Date.now().toString(36)}`;
const tmp = mkdtempSync(path.join(os.tmpdir(), `${runId}-`));
const SECRET_KEY = `sk_test_${runId}`;
const API_KEY = `psk_${runId}${'0'.repeat(32)}`;
const wallStart = performance.now();

const scenarios: LoadScenario[] = [];
const durability: DurabilityCheck[] = [];
const drains: DrainRun[] = [];
const readiness: ReadyTime[] = [];
const serviceHwmMb: Record<string, number> = {};
const notes: string[] = [];
const running = new Set<Proc>();
const rabbitPrefixes: string[] = [];
const pgDatabases: string[] = [];

const progress = createProgress(wallStart);

// ---------------------------------------------------------------------------------------------- processes

let app: AppSnapshot;
async function startBaseline(name: string, file: string, env: Record<string, string> = {}) {
  const proc = startProcess({
    name,
    args: [file],
    env: { PORT: '0', ...env },
    cwd: ROOT,
    logDir: tmp,
  });
  running.add(proc);
  const port = Number((await proc.waitForLine(/listening (\d+)/))[1]);
  const base = `http://127.0.0.1:${port}`;
  readiness.push({ process: name, ms: await waitReady(proc, base) });
  return { proc, base };
}

interface ServiceSpec {
  name: string;
  databaseUrl: string;
  broker: 'rabbitmq' | 'memory';
  role: 'api' | 'worker' | 'all';
  prefix?: string;
  auth?: boolean;
}

interface RunningService {
  proc: Proc;
  base: string;
  readyMs: number;
}

async function startService(spec: ServiceSpec): Promise<RunningService> {
  const port = await freePort();
  const env = serviceEnv({
    port,
    databaseUrl: spec.databaseUrl,
    role: spec.role,
    sandboxBase,
    secretKey: SECRET_KEY,
    ...(spec.broker === 'rabbitmq' ? { rabbitmqUrl: RABBITMQ_URL } : {}),
    ...(spec.prefix ? { queuePrefix: spec.prefix } : {}),
    ...(spec.auth ? { apiKey: API_KEY } : {}),
  });
  if (spec.prefix && !rabbitPrefixes.includes(spec.prefix)) rabbitPrefixes.push(spec.prefix);
  // cwd is the temp dir so a developer's .env in the checkout cannot change what is measured.
  const proc = startProcess({
    name: spec.name,
    args: [...SERVICE_NODE_OPTIONS, app.main],
    env,
    cwd: tmp,
    logDir: tmp,
  });
  running.add(proc);
  const base = `http://127.0.0.1:${port}`;
  const readyMs = await waitReady(proc, base);
  readiness.push({ process: spec.name, ms: readyMs });
  return { proc, base, readyMs };
}

async function stop(proc: Proc, isService = true): Promise<void> {
  const mem = await stopProcess(proc);
  running.delete(proc);
  if (isService && mem) serviceHwmMb[proc.name] = Math.max(serviceHwmMb[proc.name] ?? 0, mem.hwmMb);
}

// --------------------------------------------------------------------------------------------------- load

const authHeaders = (auth: boolean): Record<string, string> =>
  auth ? { authorization: `Bearer ${API_KEY}` } : {};

interface MeasureSpec {
  id: string;
  system: LoadScenario['system'];
  operation: string;
  base: string;
  kind: LoadKind;
  procs: Proc[];
  ids?: string[];
  expectStatus: number[];
  auth?: boolean;
  store?: LoadScenario['store'];
  broker?: LoadScenario['broker'];
  role?: LoadScenario['role'];
  /** refund-async: ids of the 202 answers, warm-up included. */
  accepted?: string[];
}

/** What one target collects over its rounds. */
interface Tally {
  spec: MeasureSpec;
  seconds: number;
  ok: number;
  requests: number;
  errors: number;
  statuses: Record<string, number>;
  latencies: Float64Array[];
  peaks: Record<string, number>;
  cpu: { machine: number; bench: number; other: number; loadAverage: number };
  /** CPU ticks each measured process used during the rounds. */
  procTicks: Record<string, number>;
  mainTicks: Record<string, number>;
}

let loadSeq = 0;

async function loadOnce(m: MeasureSpec, seconds: number, tally: Tally | null): Promise<void> {
  const n = loadSeq++;
  const prefix = `${runId}-${n}`;
  const acceptedFile = path.join(tmp, `${prefix}.accepted`);
  const latencyFile = path.join(tmp, `${prefix}.lat`);
  const sampler = tally ? sampleRss(m.procs) : null;
  const ticksBefore = m.procs.map((p) => processTicks(p.pid));
  const mainBefore = m.procs.map((p) => mainThreadTicks(p.pid));
  const before = cpuSample();
  let out: LoadOutput;
  try {
    out = await runLoad({
      url: m.base,
      kind: m.kind,
      connections: CONNECTIONS,
      durationSec: seconds,
      expectStatus: m.expectStatus,
      headers: authHeaders(m.auth ?? false),
      idPrefix: prefix,
      acceptedFile,
      latencyFile,
      ...(m.ids ? { ids: m.ids } : {}),
    });
  } finally {
    const peaks = sampler?.stop() ?? {};
    if (tally) {
      for (const [p, mb] of Object.entries(peaks)) tally.peaks[p] = Math.max(tally.peaks[p] ?? 0, mb);
    }
  }
  const share = cpuShare(before, cpuSample());
  const ticksAfter = m.procs.map((p) => processTicks(p.pid));
  const mainAfter = m.procs.map((p) => mainThreadTicks(p.pid));
  if (m.kind === 'refund-async') {
    const text = readFileSync(acceptedFile, 'utf8');
    if (text) m.accepted?.push(...text.split('\n'));
  }
  if (!tally) return;
  const w = out.durationSec;
  for (const k of ['machine', 'bench', 'other', 'loadAverage'] as const) {
    tally.cpu[k] = (tally.cpu[k] * tally.seconds + share[k] * w) / (tally.seconds + w);
  }
  m.procs.forEach((p, i) => {
    const [a, b] = [ticksBefore[i], ticksAfter[i]];
    if (a != null && b != null) tally.procTicks[p.name] = (tally.procTicks[p.name] ?? 0) + (b - a);
    const [ma, mb] = [mainBefore[i], mainAfter[i]];
    if (ma != null && mb != null) tally.mainTicks[p.name] = (tally.mainTicks[p.name] ?? 0) + (mb - ma);
  });
  tally.seconds += w;
  tally.ok += out.ok;
  tally.requests += out.requests;
  tally.errors += out.errors + out.timeouts;
  for (const [code, c] of Object.entries(out.statuses))
    tally.statuses[code] = (tally.statuses[code] ?? 0) + c;
  const raw = readFileSync(latencyFile);
  tally.latencies.push(new Float64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8));
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function finish(t: Tally): LoadScenario {
  const all = new Float64Array(t.latencies.reduce((n, l) => n + l.length, 0));
  let at = 0;
  for (const l of t.latencies) {
    all.set(l, at);
    at += l.length;
  }
  all.sort();
  const m = t.spec;
  const round1 = (n: number) => Math.round(n * 10) / 10;
  const scenario: LoadScenario = {
    id: m.id,
    system: m.system,
    operation: m.operation,
    ...(m.store ? { store: m.store } : {}),
    ...(m.broker ? { broker: m.broker } : {}),
    ...(m.role ? { role: m.role } : {}),
    auth: m.auth ?? false,
    connections: CONNECTIONS,
    durationSec: round1(t.seconds),
    reqPerSec: t.ok / t.seconds,
    requests: t.requests,
    statuses: t.statuses,
    errors: t.errors,
    latencyMs: {
      p50: round1(percentile(all, 0.5)),
      p99: round1(percentile(all, 0.99)),
      p999: round1(percentile(all, 0.999)),
      max: round1(all[all.length - 1] ?? NaN),
    },
    peakRssMb: t.peaks,
    cpuCores: {
      machine: round1(t.cpu.machine * 10) / 10,
      bench: round1(t.cpu.bench * 10) / 10,
      other: round1(t.cpu.other * 10) / 10,
      loadAverage: round1(t.cpu.loadAverage * 10) / 10,
    },
    cpuUsPerRequest: Object.fromEntries(
      Object.entries(t.procTicks).map(([p, ticks]) => [
        p,
        t.ok > 0 ? Math.round((ticks * US_PER_TICK) / t.ok) : 0,
      ]),
    ),
    mainThreadUsPerRequest: Object.fromEntries(
      Object.entries(t.mainTicks).map(([p, ticks]) => [
        p,
        t.ok > 0 ? Math.round((ticks * US_PER_TICK) / t.ok) : 0,
      ]),
    ),
  };
  scenarios.push(scenario);
  return scenario;
}

const newTally = (spec: MeasureSpec): Tally => ({
  spec,
  seconds: 0,
  ok: 0,
  requests: 0,
  errors: 0,
  statuses: {},
  latencies: [],
  peaks: {},
  cpu: { machine: 0, bench: 0, other: 0, loadAverage: 0 },
  procTicks: {},
  mainTicks: {},
});

/**
 * Measures a baseline and the service scenario it is compared with in alternating rounds
 * (B S S B ...), so a neighbour's burst of load on this shared machine lands on both.
 */
async function measurePair(baseline: MeasureSpec, service: MeasureSpec, target: number) {
  const b = newTally(baseline);
  const sv = newTally(service);
  if (WARMUP > 0) {
    await loadOnce(baseline, WARMUP, null);
    await loadOnce(service, WARMUP, null);
  }
  const slice = DURATION / ROUNDS;
  for (let r = 0; r < ROUNDS; r++) {
    const order: [MeasureSpec, Tally][] =
      r % 2 === 0
        ? [
            [baseline, b],
            [service, sv],
          ]
        : [
            [service, sv],
            [baseline, b],
          ];
    for (const [spec, tally] of order) await loadOnce(spec, slice, tally);
  }
  const bs = finish(b);
  const ss = finish(sv);
  compare(ss, bs, target);
  return { baseline: bs, service: ss };
}

/** A service scenario measured alone, compared with a baseline measured earlier in the run. */
async function measureAlone(spec: MeasureSpec, baseline: LoadScenario, target: number) {
  const t = newTally(spec);
  if (WARMUP > 0) await loadOnce(spec, WARMUP, null);
  await loadOnce(spec, DURATION, t);
  const s = finish(t);
  compare(s, baseline, target);
  return s;
}

function compare(s: LoadScenario, baseline: LoadScenario, target: number): void {
  s.baselineId = baseline.id;
  s.ratio = baseline.reqPerSec > 0 ? s.reqPerSec / baseline.reqPerSec : 0;
  s.targetRatio = target;
  s.pass = s.ratio >= target;
}

// ---------------------------------------------------------------------------------------- helper calls

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitOutboxEmpty(ledger: Ledger, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let pending = await ledger.outboxPending();
  while (pending > 0 && Date.now() < deadline) {
    await sleep(100);
    pending = await ledger.outboxPending();
  }
  return pending;
}

// -------------------------------------------------------------------------------------------- the plan

let sandbox: Proc;
let sandboxBase = '';
let b1 = { proc: null as unknown as Proc, base: '' };
let b2 = { proc: null as unknown as Proc, base: '' };

interface Step {
  label: string;
  run: () => Promise<void>;
}
const plan: Step[] = [];

plan.push({
  label: 'build the service (tsc -p tsconfig.build.json) and the two baselines into a private directory',
  run: async () => {
    app = APP_DIR ? snapshotPaths(path.resolve(APP_DIR)) : await buildSnapshot(ROOT, path.join(tmp, 'app'));
    primeCodeCache(app, SERVICE_NODE_OPTIONS);
  },
});

plan.push({
  label: 'start the sandbox and the two baselines',
  run: async () => {
    const port = await freePort();
    sandbox = startProcess({
      name: 'sandbox',
      args: [app.sandboxCli],
      // No SANDBOX_WEBHOOK_URL: webhooks are off, so the figures are the request paths alone.
      env: { SANDBOX_PORT: String(port), SANDBOX_SECRET_KEY: SECRET_KEY, LOG_LEVEL: 'warn' },
      cwd: tmp,
      logDir: tmp,
    });
    running.add(sandbox);
    sandboxBase = `http://127.0.0.1:${port}`;
    await waitForSandbox(sandboxBase);
    b1 = await startBaseline('baseline1', app.baselines.validatorCeiling);
    b2 = await startBaseline('baseline2', app.baselines.stripeDirect, {
      STRIPE_SECRET_KEY: SECRET_KEY,
      STRIPE_API_BASE: sandboxBase,
    });
  },
});

for (const store of STORES) {
  const s: {
    url: string;
    dbName: string;
    ledger: Ledger | null;
    memUrl: string;
    memDbName: string;
    memLedger: Ledger | null;
    svc: RunningService | null;
    intents: string[];
    accepted: string[];
    b1Async: LoadScenario | null;
    b1Status: LoadScenario | null;
  } = {
    url: '',
    dbName: '',
    ledger: null,
    memUrl: '',
    memDbName: '',
    memLedger: null,
    svc: null,
    intents: [],
    accepted: [],
    b1Async: null,
    b1Status: null,
  };
  const tag = `${store}+rabbitmq`;
  const prefix = `${runId}.${store}`;
  const openLedger = () =>
    (s.ledger ??= store === 'sqlite' ? sqliteLedger(s.url.slice('sqlite:'.length)) : postgresLedger(s.url));

  plan.push({
    label: `${store}: fresh database, start the service (ROLE=api, RabbitMQ), seed ${SEED_INTENTS} paid intents`,
    run: async () => {
      // Each store block starts from an empty sandbox, so both it and baseline 2 see the same state.
      await fetch(`${sandboxBase}/_sandbox/reset`, { method: 'POST' });
      if (store === 'sqlite') s.url = `sqlite:${path.join(tmp, 'payments.db')}`;
      else {
        s.dbName = `${runId}_pg`;
        s.url = await createPgDatabase(PG_ADMIN_URL, s.dbName);
        pgDatabases.push(s.dbName);
      }
      s.svc = await startService({
        name: `service-${store}-api`,
        databaseUrl: s.url,
        broker: 'rabbitmq',
        role: 'api',
        prefix,
      });
      s.intents = await seedIntents(s.svc.base, SEED_INTENTS);
    },
  });

  for (const [kind, operation] of [
    ['create-payment-intent', 'POST /payment-intent'],
    ['get-payment-intent', 'GET /payment-intent/{id}'],
  ] as const) {
    plan.push({
      label: `${tag} ${operation} against baseline 2, alternating rounds`,
      run: async () => {
        await measurePair(
          {
            id: `baseline2 ${operation} (${store} block)`,
            system: 'baseline 2 (Express + Stripe SDK)',
            operation,
            base: b2.base,
            kind,
            procs: [b2.proc, sandbox],
            // The very intents the service reads (succeeded, with a charge), from the same sandbox.
            ids: s.intents,
            expectStatus: [200],
          },
          {
            id: `${tag} ${operation}`,
            system: 'service',
            operation,
            base: s.svc!.base,
            kind,
            procs: [s.svc!.proc, sandbox],
            ids: s.intents,
            expectStatus: [200],
            store,
            broker: 'rabbitmq',
            role: 'api',
          },
          TARGET_PROXY_RATIO,
        );
      },
    });
  }

  plan.push({
    label: `${tag} POST /refund-async against baseline 1; then every 202 checked in the ledger and on the queue`,
    run: async () => {
      const { baseline, service: r } = await measurePair(
        {
          id: `baseline1 POST /refund-async (${store} block)`,
          system: 'baseline 1 (Express + validator, fixed body)',
          operation: 'POST /refund-async',
          base: b1.base,
          kind: 'refund-async',
          procs: [b1.proc],
          ids: s.intents,
          expectStatus: [202],
        },
        {
          id: `${tag} POST /refund-async`,
          system: 'service',
          operation: 'POST /refund-async',
          base: s.svc!.base,
          kind: 'refund-async',
          procs: [s.svc!.proc],
          ids: s.intents,
          expectStatus: [202],
          store,
          broker: 'rabbitmq',
          role: 'api',
          accepted: s.accepted,
        },
        TARGET_ASYNC_RATIO,
      );
      s.b1Async = baseline;
      const ledger = openLedger();
      const pending = await waitOutboxEmpty(ledger, 60_000);
      const missing = await ledger.missing(s.accepted);
      const depth = await queueDepth(RABBITMQ_URL, `${prefix}.stripe_refund_requests`);
      durability.push({
        scenarioId: r.id,
        accepted202: s.accepted.length,
        missingLedgerRows: missing,
        outboxPendingAfterDrain: pending,
        requestsQueueDepth: depth,
        pass: missing === 0 && pending === 0 && depth !== null && depth >= s.accepted.length,
      });
    },
  });

  plan.push({
    label: `${tag} GET /refund-status/{id} against baseline 1`,
    run: async () => {
      const { baseline, service: r } = await measurePair(
        {
          id: `baseline1 GET /refund-status/{id} (${store} block)`,
          system: 'baseline 1 (Express + validator, fixed body)',
          operation: 'GET /refund-status/{id}',
          base: b1.base,
          kind: 'refund-status',
          procs: [b1.proc],
          ids: s.accepted.slice(0, STATUS_IDS),
          expectStatus: [200],
        },
        {
          id: `${tag} GET /refund-status/{id}`,
          system: 'service',
          operation: 'GET /refund-status/{id}',
          base: s.svc!.base,
          kind: 'refund-status',
          procs: [s.svc!.proc],
          ids: s.accepted.slice(0, STATUS_IDS),
          expectStatus: [200],
          store,
          broker: 'rabbitmq',
          role: 'api',
        },
        TARGET_ASYNC_RATIO,
      );
      s.b1Status = baseline;
      r.note =
        'The brief sets no bar of its own for this read; it is held to the 0.6 of the accept path against the same baseline.';
      await stop(s.svc!.proc);
    },
  });

  if (AUTH_RUN && store === STORES[0]) {
    plan.push({
      label: `${tag} GET /refund-status/{id} with API_AUTH=on (the cost of auth)`,
      run: async () => {
        const svc = await startService({
          name: `service-${store}-api-auth`,
          databaseUrl: s.url,
          broker: 'rabbitmq',
          role: 'api',
          prefix,
          auth: true,
        });
        try {
          const intents = await seedIntents(svc.base, 16, authHeaders(true));
          const accepted: string[] = [];
          // Refunds owned by the key's owner, for the status reads below (not measured).
          const fill = await runLoad({
            url: svc.base,
            kind: 'refund-async',
            connections: 8,
            durationSec: 0,
            amount: 2000,
            ids: intents,
            idPrefix: `${runId}-auth`,
            acceptedFile: path.join(tmp, 'auth.accepted'),
            headers: authHeaders(true),
            expectStatus: [202],
          });
          accepted.push(...readFileSync(path.join(tmp, 'auth.accepted'), 'utf8').split('\n').filter(Boolean));
          if (fill.ok === 0) throw new Error('auth run: no refunds accepted');
          const noAuth = scenarios.find((x) => x.id === `${tag} GET /refund-status/{id}`)!;
          const r = await measureAlone(
            {
              id: `${tag} GET /refund-status/{id} (API_AUTH=on)`,
              system: 'service',
              operation: 'GET /refund-status/{id}',
              base: svc.base,
              kind: 'refund-status',
              procs: [svc.proc],
              ids: accepted.slice(0, STATUS_IDS),
              expectStatus: [200],
              store,
              broker: 'rabbitmq',
              role: 'api',
              auth: true,
            },
            s.b1Status!,
            TARGET_ASYNC_RATIO,
          );
          r.note = `Bearer API key checked on every request; ${((r.reqPerSec / noAuth.reqPerSec) * 100).toFixed(0)}% of the same read with auth off (measured earlier, not interleaved).`;
        } finally {
          await stop(svc.proc);
        }
      },
    });
  }

  plan.push({
    label: `${store}+memory POST /refund-async in one process (ROLE=all, worker draining alongside)`,
    run: async () => {
      // Its own database: the RabbitMQ runs left thousands of queued refunds behind, and an embedded
      // process re-queues queued refunds it finds at start, which would add work nobody measures.
      if (store === 'sqlite') s.memUrl = `sqlite:${path.join(tmp, 'payments-memory.db')}`;
      else {
        s.memDbName = `${runId}_pgmem`;
        s.memUrl = await createPgDatabase(PG_ADMIN_URL, s.memDbName);
        pgDatabases.push(s.memDbName);
      }
      const svc = await startService({
        name: `service-${store}-all-memory`,
        databaseUrl: s.memUrl,
        broker: 'memory',
        role: 'all',
      });
      try {
        // Paid intents this ledger knows, as for the RabbitMQ runs: refunds of the RabbitMQ runs' intents would be
        // refunds of payments this database has never seen, each first one read from Stripe (up to and including
        // benchmx26ui1f they were, which on PostgreSQL made most requests that slower kind).
        const intents = await seedIntents(svc.base, SEED_INTENTS);
        const accepted: string[] = [];
        const r = await measureAlone(
          {
            id: `${store}+memory POST /refund-async (ROLE=all)`,
            system: 'service',
            operation: 'POST /refund-async',
            base: svc.base,
            kind: 'refund-async',
            procs: [svc.proc, sandbox],
            ids: intents,
            expectStatus: [202],
            store,
            broker: 'memory',
            role: 'all',
            accepted,
          },
          s.b1Async!,
          TARGET_ASYNC_RATIO,
        );
        const ledger = (s.memLedger ??=
          store === 'sqlite' ? sqliteLedger(s.memUrl.slice('sqlite:'.length)) : postgresLedger(s.memUrl));
        const missing = await ledger.missing(accepted);
        // The in-process worker finishes what was accepted before the process is stopped.
        const deadline = Date.now() + 120_000;
        let counts = await ledger.countByPrefix(`${runId}-`);
        while (
          (counts.byStatus['succeeded'] ?? 0) + (counts.byStatus['failed'] ?? 0) < counts.total &&
          Date.now() < deadline
        ) {
          await sleep(200);
          counts = await ledger.countByPrefix(`${runId}-`);
        }
        const pending = await waitOutboxEmpty(ledger, 10_000);
        r.note = `Embedded mode: the in-process worker refunds what is accepted while the load runs, on the same cores; afterwards ${counts.byStatus['succeeded'] ?? 0}/${counts.total} had succeeded.`;
        durability.push({
          scenarioId: r.id,
          accepted202: accepted.length,
          missingLedgerRows: missing,
          outboxPendingAfterDrain: pending,
          requestsQueueDepth: null,
          pass: missing === 0 && pending === 0,
        });
      } finally {
        await stop(svc.proc);
      }
    },
  });

  for (const workers of [1, 2]) {
    plan.push({
      label: `${tag} drain: fill ${DRAIN_REFUNDS} through the API, then ${workers} worker process(es)`,
      run: async () => {
        const drainPrefix = `${prefix}.drain${workers}`;
        const idPrefix = `${runId}-${store}-drain${workers}`;
        const api = await startService({
          name: `service-${store}-api-fill${workers}`,
          databaseUrl: s.url,
          broker: 'rabbitmq',
          role: 'api',
          prefix: drainPrefix,
        });
        const fillFile = path.join(tmp, `${idPrefix}.accepted`);
        let fill: LoadOutput;
        try {
          fill = await runLoad({
            url: api.base,
            kind: 'refund-async',
            connections: CONNECTIONS,
            durationSec: 0,
            amount: DRAIN_REFUNDS,
            ids: s.intents,
            idPrefix,
            acceptedFile: fillFile,
            expectStatus: [202],
          });
        } finally {
          await stop(api.proc); // flushes its outbox to RabbitMQ on the way out
        }
        const ledger = openLedger();
        const left = await waitOutboxEmpty(ledger, 60_000);
        if (left > 0) throw new Error(`${left} outbox rows were not published before the drain`);
        const queued = (await ledger.countByPrefix(idPrefix)).total;
        const depth = await queueDepth(RABBITMQ_URL, `${drainPrefix}.stripe_refund_requests`);
        if (depth === null || depth < queued)
          throw new Error(`queue holds ${depth} messages for ${queued} refunds`);
        drains.push(
          await drain({
            store,
            workers,
            idPrefix,
            queued,
            ledger,
            url: s.url,
            prefix: drainPrefix,
            fillPerSec: fill.okPerSec,
          }),
        );
      },
    });
  }

  plan.push({
    label: `${store}+memory drain: one ROLE=all process, ${DRAIN_REFUNDS} accepted refunds land in its outbox at once`,
    run: async () => {
      const idPrefix = `${runId}-${store}-drainmem`;
      const svc = await startService({
        name: `service-${store}-all-memory-drain`,
        databaseUrl: s.memUrl,
        broker: 'memory',
        role: 'all',
      });
      const sampler = sampleRss([svc.proc]);
      let peaks: Record<string, number> = {};
      try {
        // The in-process queue exists only inside the running process, so "filled first" means: the
        // process is up and idle, then the refunds are committed to its outbox in one transaction, as if
        // a burst of POST /refund-async had just been accepted. Its relay and worker take it from there.
        const t0 = performance.now();
        await fillQueuedRefunds({ url: s.memUrl, intents: s.intents, count: DRAIN_REFUNDS, idPrefix });
        const filled = performance.now();
        const result = await waitTerminal(s.memLedger!, idPrefix, DRAIN_REFUNDS, filled);
        peaks = sampler.stop();
        await stop(svc.proc);
        drains.push({
          id: `${store}+memory drain, 1 process (ROLE=all)`,
          store,
          broker: 'memory',
          workers: 1,
          refunds: DRAIN_REFUNDS,
          fillPerSec: DRAIN_REFUNDS / ((filled - t0) / 1000),
          seconds: result.seconds,
          perSec: DRAIN_REFUNDS / result.seconds,
          steadyPerSec: result.steadyPerSec,
          byStatus: result.byStatus,
          peakRssMb: peaks,
          target: TARGET_DRAIN_PER_SEC,
          pass:
            DRAIN_REFUNDS / result.seconds >= TARGET_DRAIN_PER_SEC &&
            (result.byStatus['succeeded'] ?? 0) === DRAIN_REFUNDS,
        });
      } finally {
        sampler.stop();
        if (running.has(svc.proc)) await stop(svc.proc);
      }
    },
  });

  plan.push({
    label: `${store}: clean up`,
    run: async () => {
      await s.ledger?.close();
      await s.memLedger?.close();
      s.ledger = s.memLedger = null;
      if (store === 'postgres' && !KEEP) {
        for (const name of [s.dbName, s.memDbName]) {
          await dropPgDatabase(PG_ADMIN_URL, name);
          pgDatabases.splice(pgDatabases.indexOf(name), 1);
        }
      }
    },
  });
}

interface DrainSpec {
  store: 'sqlite' | 'postgres';
  workers: number;
  idPrefix: string;
  queued: number;
  ledger: Ledger;
  url: string;
  prefix: string;
  fillPerSec: number;
}

async function drain(d: DrainSpec): Promise<DrainRun> {
  const t0 = performance.now();
  const procs: Proc[] = [];
  // Started together, so the clock runs from the first spawn; their start-up is part of the figure.
  const started = await Promise.all(
    Array.from({ length: d.workers }, (_, i) =>
      startService({
        name: `service-${d.store}-worker${i + 1}of${d.workers}`,
        databaseUrl: d.url,
        broker: 'rabbitmq',
        role: 'worker',
        prefix: d.prefix,
      }),
    ),
  );
  for (const w of started) procs.push(w.proc);
  const sampler = sampleRss(procs);
  let peaks: Record<string, number> = {};
  let result: Awaited<ReturnType<typeof waitTerminal>>;
  try {
    result = await waitTerminal(d.ledger, d.idPrefix, d.queued, t0);
  } finally {
    peaks = sampler.stop();
    await Promise.all(procs.map((p) => stop(p)));
  }
  const { seconds, steadyPerSec, byStatus } = result;
  const perSec = d.queued / seconds;
  return {
    id: `${d.store}+rabbitmq drain, ${d.workers} worker process${d.workers > 1 ? 'es' : ''}`,
    store: d.store,
    broker: 'rabbitmq',
    workers: d.workers,
    refunds: d.queued,
    fillPerSec: d.fillPerSec,
    seconds,
    perSec,
    steadyPerSec,
    byStatus,
    peakRssMb: peaks,
    target: TARGET_DRAIN_PER_SEC,
    pass: perSec >= TARGET_DRAIN_PER_SEC && (byStatus['succeeded'] ?? 0) === d.queued,
  };
}

/**
 * Polls the ledger until `count` refunds under `idPrefix` are final (succeeded or failed). A poll counts the
 * run's refunds by status, tens of thousands of rows by the second drain, on the machine being measured:
 * every 50 ms, one PostgreSQL backend spent ~15% of a core on it while the workers drained. So it polls
 * every 50 ms only until the first refund is final and near the end; in between it waits a quarter of the
 * time the rate so far says is left (at most 1 s), which still sees the end within ~50 ms.
 */
async function waitTerminal(ledger: Ledger, idPrefix: string, count: number, t0: number) {
  let first = 0;
  let counts = await ledger.countByPrefix(idPrefix);
  const terminal = () => (counts.byStatus['succeeded'] ?? 0) + (counts.byStatus['failed'] ?? 0);
  const deadline = t0 + Math.max(120_000, (count / 50) * 1000);
  while (terminal() < count) {
    const now = performance.now();
    if (now > deadline) throw new Error(`drain stalled at ${terminal()}/${count}`);
    const done = terminal();
    const left = first && done > 0 ? ((count - done) * (now - first)) / done : 0;
    await sleep(Math.min(1000, Math.max(50, left / 4)));
    counts = await ledger.countByPrefix(idPrefix);
    if (!first && terminal() > 0) first = performance.now();
  }
  const end = performance.now();
  const seconds = (end - t0) / 1000;
  return {
    seconds,
    steadyPerSec: first && end > first ? count / ((end - first) / 1000) : count / seconds,
    byStatus: counts.byStatus,
  };
}

// ---------------------------------------------------------------------------------------------- run it

async function cleanup(): Promise<void> {
  for (const p of [...running]) await stop(p, p.name.startsWith('service')).catch(() => undefined);
  try {
    const n = await deletePrefixed(RABBITMQ_URL, rabbitPrefixes);
    if (n > 0) notes.push(`Deleted the ${n} RabbitMQ queues this run declared (prefix ${runId}.*).`);
  } catch (err) {
    notes.push(`Could not delete this run's RabbitMQ queues (prefix ${runId}.*): ${(err as Error).message}`);
  }
  for (const db of pgDatabases) await dropPgDatabase(PG_ADMIN_URL, db).catch(() => undefined);
  if (!KEEP) rmSync(tmp, { recursive: true, force: true });
}

function targetsOf(): BenchResults['targets'] {
  const t: BenchResults['targets'] = [];
  for (const s of scenarios.filter((x) => x.pass !== undefined && x.system === 'service')) {
    t.push({
      name: `${s.id} vs ${s.baselineId?.replace(/ \(.*\)$/, '')}`,
      target: `>= ${s.targetRatio}`,
      measured: s.ratio!.toFixed(2),
      pass: s.pass!,
    });
  }
  for (const d of durability) {
    t.push({
      name: `${d.scenarioId}: every 202 durable`,
      target: 'all',
      measured: `${d.accepted202 - d.missingLedgerRows}/${d.accepted202} in ledger, outbox left ${d.outboxPendingAfterDrain}${d.requestsQueueDepth === null ? '' : `, queue ${d.requestsQueueDepth}`}`,
      pass: d.pass,
    });
  }
  for (const d of drains) {
    t.push({
      name: d.id,
      target: `>= ${TARGET_DRAIN_PER_SEC}/s`,
      measured: `${d.perSec.toFixed(0)}/s`,
      pass: d.pass,
    });
  }
  const rssPeak = Math.max(0, ...Object.values(serviceHwmMb));
  t.push({
    name: 'peak RSS of any service process (VmHWM)',
    target: `< ${TARGET_RSS_MB} MB`,
    measured: `${rssPeak.toFixed(0)} MB`,
    pass: rssPeak < TARGET_RSS_MB,
  });
  const ready = readiness.filter((r) => r.process.startsWith('service'));
  const worst = Math.max(0, ...ready.map((r) => r.ms));
  t.push({
    name: 'time to ready, slowest service start',
    target: `< ${TARGET_READY_MS} ms`,
    measured: `${worst.toFixed(0)} ms`,
    pass: worst < TARGET_READY_MS,
  });
  return t;
}

let failed: unknown = null;
progress.begin(plan.length);
try {
  for (const step of plan) {
    progress.step(step.label);
    await step.run();
  }
} catch (err) {
  failed = err;
  notes.push(`The run stopped early: ${(err as Error).message}`);
} finally {
  progress.done();
  await cleanup();
}

const busy = scenarios.filter((x) => x.cpuCores.other > 0.25 && x.system !== 'service');
const busyService = scenarios.filter((x) => x.cpuCores.other > 0.25 && x.system === 'service');
if (busyService.length > 0) {
  notes.push(
    `Outside this bench's processes, the machine used more than 0.25 cores during: ${busyService
      .map((x) => `${x.id} (${x.cpuCores.other.toFixed(2)})`)
      .join(', ')}. On PostgreSQL most of that is the database server answering the service itself.`,
  );
}
if (busy.length > 0) {
  notes.push(`Baselines measured while others used the machine: ${busy.map((x) => x.id).join(', ')}.`);
}

const results: BenchResults = {
  runId,
  machine: machineInfo(),
  command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
  settings: {
    durationSec: DURATION,
    warmupSec: WARMUP,
    connections: CONNECTIONS,
    drainRefunds: DRAIN_REFUNDS,
    stores: STORES.join(','),
    LOG_LEVEL: 'warn',
    VALIDATE_RESPONSES: false,
    NODE_ENV: 'development',
    API_AUTH: 'off (one run on)',
    RATE_LIMIT_PER_MINUTE: 0,
    STRIPE_MAX_RPS: 0,
    WORKER_PREFETCH: 32,
    webhooks: 'off (the sandbox has no webhook endpoint)',
    serviceNodeOptions: SERVICE_NODE_OPTIONS.join(' ') || '(none)',
    rounds: ROUNDS,
  },
  wallSeconds: (performance.now() - wallStart) / 1000,
  scenarios,
  durability,
  drains,
  readiness,
  serviceHwmMb,
  targets: targetsOf(),
  notes,
};
mkdirSync(OUT_DIR, { recursive: true });
const written = writeReport(results, OUT_DIR);
console.log(`\nResults: ${written.join(', ')}`);
for (const t of results.targets)
  console.log(`${t.pass ? 'PASS' : 'MISS'}  ${t.name}: ${t.measured} (target ${t.target})`);
if (failed) {
  console.error(failed);
  process.exitCode = 1;
}
