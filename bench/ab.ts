/**
 * `npm run bench:ab -- --a=<git rev> [--b=<git rev>] [--scenario=refund-async]`: two builds of the service
 * side by side against one baseline, in alternating rounds, on SQLite (or --store=postgres) + RabbitMQ. On a
 * shared machine the same code's req/s moves by a quarter between `npm run bench` runs; measured in one run,
 * interleaved, two builds see the same weather, so this is how a change is told from noise. See bench/README.md.
 *
 * --a, --b: git revisions (b defaults to the working tree as it is). Each is built into a private
 * directory (a revision through a temporary `git worktree` that borrows this checkout's node_modules).
 * --scenario: refund-async (vs baseline 1), create-payment-intent or get-payment-intent (vs baseline 2).
 * --rounds=4, --duration=4 (s measured a round), --warmup=2, --connections=32, --intents=2048 (paid
 * intents seeded through each service, used round-robin), --keep.
 * --store=postgres: each build gets a fresh database on the server at --pg-url (default
 * postgres://postgres@127.0.0.1:5432/test, a user that may CREATE DATABASE), dropped at the end.
 * --queue=memory: each build runs ROLE=all on the in-process queue (no RabbitMQ), so its own worker refunds
 * alongside the load, as in the full bench's "without RabbitMQ" scenario. Default: rabbitmq (ROLE=api).
 * --a-node-options, --b-node-options: `node` flags of each build's process (default: the production image's
 * NODE_OPTIONS), to compare heap settings on one build (--a=HEAD with no --b is the working tree).
 * --sql-timing=<dir>: both builds run with bench/probes/sqlite-statements.mjs, which times every better-sqlite3
 * call of their main thread by SQL text; when they stop, <dir>/a.json and <dir>/b.json hold the figures and a
 * table sets them side by side, per answered request (seeding, warm-ups and rounds). SQLite only.
 * --cpu-prof=<dir>: both builds run with `node --cpu-prof`; their profiles (written when they stop) are
 * moved to <dir>/a.cpuprofile, <dir>/b.cpuprofile and <dir>/baseline.cpuprofile.
 * --heap-sample=<dir>: both builds and the baseline run with bench/probes/heap-sample.mjs (V8's sampling heap
 * profiler, collected objects included), started just before the first warm-up so seeding stays out; when
 * they stop, <dir>/{a,b,baseline}.heapprofile hold what each allocated, and the bytes allocated per request
 * answered (warm-ups and rounds) are printed with the collections V8 made meanwhile. Read a profile with
 * `node bench/probes/heap-summary.mjs <file> --requests=N`. The sampler costs CPU: req/s of such a run is not
 * comparable with a run without it. --heap-sample-interval=<bytes> (default 1024): mean bytes between samples;
 * 0 takes no profile, only the collections and their pauses, in a process the sampler does not slow.
 * --heap-sample-live: the profiles hold what was still in the heap halfway through each system's first round
 * (allocated since seeding and freed by no collection yet: in-flight requests, what scavenges promoted since the
 * last mark-compact, what is kept), not what was allocated; bytes per request then mean nothing.
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSnapshot, primeCodeCache, type AppSnapshot } from './lib/build.js';
import { commandTicks, mainThreadUserSys, processTicks, US_PER_TICK } from './lib/cpu.js';
import { createPgDatabase, dropPgDatabase } from './lib/ledger.js';
import { runLoad } from './lib/load.js';
import type { LoadKind } from './lib/load-types.js';
import { freePort, memStatus, startProcess, stopProcess, waitReady, type Proc } from './lib/procs.js';
import { deletePrefixed } from './lib/rabbit.js';
import { PRODUCTION_NODE_OPTIONS, seedIntents, serviceEnv, waitForSandbox } from './lib/service.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Requests each build answered (seeding, warm-ups and rounds), for figures per request. */
const served: Record<string, number> = {};
/** Requests each answered while --heap-sample's profiler ran (warm-ups and rounds). */
const sampled: Record<string, number> = {};
function option(name: string, fallback: string): string {
  const flag = process.argv.find((a) => a.startsWith(`--${name}=`));
  return flag ? flag.slice(flag.indexOf('=') + 1) : fallback;
}
const A = option('a', '');
const B = option('b', '');
const SCENARIO = option('scenario', 'refund-async') as LoadKind;
const ROUNDS = Number(option('rounds', '4'));
const DURATION = Number(option('duration', '4'));
const WARMUP = Number(option('warmup', '2'));
const CONNECTIONS = Number(option('connections', '32'));
const KEEP = process.argv.includes('--keep');
const CPU_PROF = option('cpu-prof', '');
const SQL_TIMING = option('sql-timing', '');
const HEAP_SAMPLE = option('heap-sample', '');
const HEAP_SAMPLE_INTERVAL = option('heap-sample-interval', '1024');
// What the heap holds, not what was allocated: the profile is taken in the middle of each system's first round.
const HEAP_SAMPLE_LIVE = process.argv.includes('--heap-sample-live');
const INTENTS = Number(option('intents', '2048'));
// Node flags of each build's process (default: the production image's).
const NODE_FLAGS: Record<string, string> = {
  a: option('a-node-options', PRODUCTION_NODE_OPTIONS),
  b: option('b-node-options', PRODUCTION_NODE_OPTIONS),
};
const RABBITMQ_URL = option('rabbitmq-url', 'amqp://guest:guest@127.0.0.1:5672');
const STORE = option('store', 'sqlite');
const QUEUE = option('queue', 'rabbitmq');
const PG_ADMIN_URL = option('pg-url', 'postgres://postgres@127.0.0.1:5432/test');
const SECRET_KEY = 'sk_test_bench_ab';
/** The shared servers whose CPU per request is reported: PostgreSQL and RabbitMQ. */
const SERVER_COMMANDS = ['postgres', 'beam.smp'];
const SCENARIOS: Record<string, { baseline: 1 | 2; expect: number[] }> = {
  'refund-async': { baseline: 1, expect: [202] },
  'create-payment-intent': { baseline: 2, expect: [200] },
  'get-payment-intent': { baseline: 2, expect: [200] },
};

const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-ab-'));
const running: Proc[] = [];
const worktrees: string[] = [];
const pgDatabases: string[] = [];
const prefix = `benchab${Date.now().toString(36)}`;

async function build(rev: string, name: string): Promise<AppSnapshot> {
  let root = ROOT;
  if (rev) {
    root = path.join(tmp, `src-${name}`);
    execFileSync('git', ['worktree', 'add', '--detach', root, rev], { cwd: ROOT, stdio: 'ignore' });
    worktrees.push(root);
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(root, 'node_modules'), 'dir');
  }
  const app = await buildSnapshot(root, path.join(tmp, `app-${name}`));
  primeCodeCache(app, NODE_FLAGS[name]!.split(/\s+/).filter(Boolean));
  return app;
}

function profileFlags(name: string): string[] {
  return CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.join(tmp, `prof-${name}`)}`] : [];
}

function sqlTimingFlags(name: string): string[] {
  if (!SQL_TIMING) return [];
  const probe = new URL('./probes/sqlite-statements.mjs', import.meta.url);
  probe.searchParams.set('out', path.resolve(SQL_TIMING, `${name}.json`));
  return [`--import=${probe.href}`];
}

function heapSampleFlags(name: string): string[] {
  if (!HEAP_SAMPLE) return [];
  const probe = new URL('./probes/heap-sample.mjs', import.meta.url);
  probe.searchParams.set('out', path.resolve(HEAP_SAMPLE, `${name}.heapprofile`));
  probe.searchParams.set('start', 'signal');
  probe.searchParams.set('interval', HEAP_SAMPLE_INTERVAL);
  if (HEAP_SAMPLE_LIVE) probe.searchParams.set('live', '1');
  return [`--import=${probe.href}`];
}

/** Bytes each process allocated per request answered while sampled, and its collections meanwhile. */
function printHeapSample(): void {
  console.log(`\nAllocation while sampled (${path.resolve(HEAP_SAMPLE)}, warm-ups and rounds):\n`);
  console.log(
    '| | requests | MB allocated | bytes/req | scavenges | mark-compacts | GC pause ms (main thread) |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const [name, file] of Object.entries(heapProfileNames)) {
    const out = path.resolve(HEAP_SAMPLE, `${file}.heapprofile`);
    type Node = { selfSize: number; children: Node[] };
    const sum = (n: Node): number => n.children.reduce((t, c) => t + sum(c), n.selfSize);
    // No profile with --heap-sample-interval=0: the collections alone.
    const bytes = existsSync(out) ? sum((JSON.parse(readFileSync(out, 'utf8')) as { head: Node }).head) : NaN;
    const gc = existsSync(`${out}.gc.json`)
      ? (JSON.parse(readFileSync(`${out}.gc.json`, 'utf8')) as Record<string, { count: number; ms: number }>)
      : {};
    const pause = Object.values(gc).reduce((t, g) => t + g.ms, 0);
    const n = sampled[name] ?? 0;
    const mb = Number.isNaN(bytes) ? '-' : (bytes / 1048576).toFixed(1);
    const perReq = Number.isNaN(bytes) || !n ? '-' : (bytes / n).toFixed(0);
    console.log(
      `| ${name} | ${n} | ${mb} | ${perReq} | ${gc['scavenge']?.count ?? 0} | ${gc['mark-compact']?.count ?? 0} | ${pause.toFixed(0)} (${n ? ((pause * 1000) / n).toFixed(1) : '-'} µs/req) |`,
    );
  }
  console.log(
    `\nAttribution: node bench/probes/heap-summary.mjs ${path.resolve(HEAP_SAMPLE, 'b.heapprofile')} --requests=${sampled['b'] ?? 0}`,
  );
}
/** The two builds, for their bundles' source maps. */
const builtApps: Record<string, AppSnapshot> = {};
/** System name → profile file name. */
const heapProfileNames: Record<string, string> = {};

/** The probe's figures of both builds, the statements that cost most first, per answered request. */
function printSqlTiming(): void {
  type Row = { sql: string; calls: number; us: number };
  const read = (name: string): Map<string, Row> => {
    const file = path.resolve(SQL_TIMING, `${name}.json`);
    if (!existsSync(file)) return new Map();
    return new Map((JSON.parse(readFileSync(file, 'utf8')) as Row[]).map((r) => [r.sql, r]));
  };
  const a = read('a');
  const b = read('b');
  const perRequest = (r: Row | undefined, name: string) =>
    r && served[name] ? (r.us / served[name]).toFixed(1) : '-';
  const total = (m: Map<string, Row>) => [...m.values()].reduce((sum, r) => sum + r.us, 0);
  const keys = [...new Set([...a.keys(), ...b.keys()])]
    .sort((x, y) => (b.get(y)?.us ?? a.get(y)?.us ?? 0) - (b.get(x)?.us ?? a.get(x)?.us ?? 0))
    .slice(0, 15);
  console.log(`\nSQLite calls of the main thread (${path.resolve(SQL_TIMING)}), µs per answered request:\n`);
  console.log('| statement | a µs/req | a calls | b µs/req | b calls |');
  console.log('|---|---:|---:|---:|---:|');
  for (const k of keys) {
    const [ra, rb] = [a.get(k), b.get(k)];
    const sql = k.length > 100 ? `${k.slice(0, 100)}…` : k;
    console.log(
      `| ${sql.replace(/\|/g, '\\|')} | ${perRequest(ra, 'a')} | ${ra?.calls ?? 0} | ${perRequest(rb, 'b')} | ${rb?.calls ?? 0} |`,
    );
  }
  const sum = (m: Map<string, Row>, name: string) =>
    served[name] ? (total(m) / served[name]).toFixed(1) : '-';
  console.log(`| all | ${sum(a, 'a')} | | ${sum(b, 'b')} | |`);
}

function start(name: string, args: string[], env: Record<string, string>, cwd = tmp): Proc {
  const proc = startProcess({ name, args, env, cwd, logDir: tmp });
  running.push(proc);
  return proc;
}

async function main(): Promise<void> {
  const scenario = SCENARIOS[SCENARIO];
  if (
    !A ||
    !scenario ||
    (STORE !== 'sqlite' && STORE !== 'postgres') ||
    !['rabbitmq', 'memory'].includes(QUEUE)
  ) {
    throw new Error(
      `usage: npm run bench:ab -- --a=<rev> [--b=<rev>] [--scenario=${Object.keys(SCENARIOS).join('|')}] [--store=sqlite|postgres] [--queue=rabbitmq|memory]`,
    );
  }
  if (HEAP_SAMPLE) mkdirSync(HEAP_SAMPLE, { recursive: true });
  if (SQL_TIMING) {
    if (STORE !== 'sqlite') throw new Error('--sql-timing times better-sqlite3: use it with --store=sqlite');
    mkdirSync(SQL_TIMING, { recursive: true });
  }
  process.stderr.write(`building a=${A} and b=${B || 'working tree'}\n`);
  const apps = { a: await build(A, 'a'), b: await build(B, 'b') };
  Object.assign(builtApps, apps);

  const sandboxPort = await freePort();
  const sandbox = start('sandbox', [apps.b.sandboxCli], {
    SANDBOX_PORT: String(sandboxPort),
    SANDBOX_SECRET_KEY: SECRET_KEY,
    LOG_LEVEL: 'warn',
  });
  const sandboxBase = `http://127.0.0.1:${sandboxPort}`;
  await waitForSandbox(sandboxBase);

  const baselineFile =
    scenario.baseline === 1 ? apps.b.baselines.validatorCeiling : apps.b.baselines.stripeDirect;
  const baselineProc = start(
    `baseline${scenario.baseline}`,
    [...profileFlags('baseline'), ...heapSampleFlags('baseline'), baselineFile],
    { PORT: '0', STRIPE_SECRET_KEY: SECRET_KEY, STRIPE_API_BASE: sandboxBase },
    ROOT,
  );
  const baselinePort = Number((await baselineProc.waitForLine(/listening (\d+)/))[1]);
  const systems = [
    { name: `baseline ${scenario.baseline}`, base: `http://127.0.0.1:${baselinePort}`, proc: baselineProc },
  ];

  for (const [name, app] of Object.entries(apps)) {
    const port = await freePort();
    let databaseUrl = `sqlite:${path.join(tmp, `${name}.db`)}`;
    if (STORE === 'postgres') {
      databaseUrl = await createPgDatabase(PG_ADMIN_URL, `${prefix}_${name}`);
      pgDatabases.push(`${prefix}_${name}`);
    }
    const proc = start(
      name,
      [
        ...(NODE_FLAGS[name] ?? '').split(' ').filter(Boolean),
        ...profileFlags(name),
        ...sqlTimingFlags(name),
        ...heapSampleFlags(name),
        app.main,
      ],
      serviceEnv({
        port,
        databaseUrl,
        role: QUEUE === 'memory' ? 'all' : 'api',
        sandboxBase,
        secretKey: SECRET_KEY,
        ...(QUEUE === 'memory' ? {} : { rabbitmqUrl: RABBITMQ_URL, queuePrefix: `${prefix}.${name}` }),
      }),
    );
    const base = `http://127.0.0.1:${port}`;
    await waitReady(proc, base);
    systems.push({ name, base, proc });
  }

  // Paid intents, created through each service so that its own ledger knows them. Enough of them that the
  // refunds of a run stay few per intent: the over-refund guard sums an intent's refunds, so refunding the
  // same few intents thousands of times would measure that sum more than the change under test.
  const intents: Record<string, string[]> = {};
  // POST /payment-intent needs none, and without them a profile holds only the scenario's requests.
  const seeds = SCENARIO === 'create-payment-intent' ? 0 : INTENTS;
  for (const s of systems.slice(1)) {
    intents[s.name] = await seedIntents(s.base, seeds);
    served[s.name] = seeds;
  }

  /** One value per measured round, for each figure. */
  type Round = {
    reqPerSec: number;
    mainUs: number;
    sysUs: number;
    processUs: number;
    sandboxUs: number;
    loadUs: number;
    serversUs: number;
    p99Ms: number;
    p999Ms: number;
  };
  type Series = { [K in keyof Round]: number[] };
  if (HEAP_SAMPLE) {
    // Seeding done: from here on the probe's profile holds the scenario's requests alone.
    for (const s of systems) {
      heapProfileNames[s.name] = s === systems[0] ? 'baseline' : s.name;
      process.kill(s.proc.pid, 'SIGUSR2');
      sampled[s.name] = 0;
    }
  }
  const results: Record<string, Series> = {};
  for (let round = 0; round < ROUNDS; round++) {
    for (const s of round % 2 === 0 ? systems : [...systems].reverse()) {
      const spec = {
        url: s.base,
        kind: SCENARIO,
        connections: CONNECTIONS,
        durationSec: DURATION,
        ids: intents[s.name] ?? intents['b']!,
        idPrefix: `${prefix}-${round}-${s.name.replace(/\W/g, '')}`,
        expectStatus: scenario.expect,
      };
      const warm = await runLoad({ ...spec, durationSec: WARMUP, idPrefix: `${spec.idPrefix}-w` });
      const before = mainThreadUserSys(s.proc.pid) ?? { user: 0, sys: 0 };
      const sandboxBefore = processTicks(sandbox.pid) ?? 0;
      const processBefore = processTicks(s.proc.pid) ?? 0;
      const serversBefore = commandTicks(SERVER_COMMANDS);
      // --heap-sample-live: the profile is taken in the middle of the first round, under load.
      const liveStop =
        HEAP_SAMPLE && HEAP_SAMPLE_LIVE && round === 0
          ? setTimeout(() => process.kill(s.proc.pid, 'SIGUSR2'), (DURATION * 1000) / 2)
          : undefined;
      const out = await runLoad(spec);
      clearTimeout(liveStop);
      const after = mainThreadUserSys(s.proc.pid) ?? before;
      const processTicksUsed = (processTicks(s.proc.pid) ?? processBefore) - processBefore;
      const serversTicks = commandTicks(SERVER_COMMANDS) - serversBefore;
      const sandboxTicks = (processTicks(sandbox.pid) ?? 0) - sandboxBefore;
      const perReq = (ticks: number) => (ticks * US_PER_TICK) / Math.max(1, out.ok);
      const mainUs = perReq(after.user - before.user + after.sys - before.sys);
      const sysUs = perReq(after.sys - before.sys);
      const sandboxUs = perReq(sandboxTicks);
      // Every thread of the process (GC helpers, libuv's pool) and the load generator: on two cores they
      // take CPU the main threads could have had.
      const processUs = perReq(processTicksUsed);
      const loadUs = out.cpuUs / Math.max(1, out.ok);
      // The shared PostgreSQL and RabbitMQ servers: what the request cost them (plus anything else using them).
      const serversUs = perReq(serversTicks);
      served[s.name] = (served[s.name] ?? 0) + warm.ok + out.ok;
      if (HEAP_SAMPLE) sampled[s.name] = (sampled[s.name] ?? 0) + warm.ok + out.ok;
      const row: Round = {
        reqPerSec: Math.round(out.okPerSec),
        mainUs: Math.round(mainUs),
        sysUs: Math.round(sysUs),
        processUs: Math.round(processUs),
        sandboxUs: Math.round(sandboxUs),
        loadUs: Math.round(loadUs),
        serversUs: Math.round(serversUs),
        p99Ms: out.latencyMs.p99,
        p999Ms: out.latencyMs.p999,
      };
      const r = (results[s.name] ??= Object.fromEntries(
        Object.keys(row).map((k) => [k, [] as number[]]),
      ) as Series);
      for (const k of Object.keys(row) as (keyof Round)[]) r[k].push(row[k]);
      process.stderr.write(
        `round ${round + 1} ${s.name}: ${Math.round(out.okPerSec)} req/s, main thread ${Math.round(mainUs)} µs/req (kernel ${Math.round(sysUs)}), all threads ${Math.round(processUs)}, sandbox ${Math.round(sandboxUs)}, load generator ${Math.round(loadUs)}, PostgreSQL + RabbitMQ ${Math.round(serversUs)} µs/req, latency p99 ${out.latencyMs.p99.toFixed(1)} ms, p99.9 ${out.latencyMs.p999.toFixed(1)} ms\n`,
      );
    }
  }

  const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
  const baseline = results[systems[0]!.name]!;
  console.log(
    `\n${SCENARIO} on ${STORE} + ${QUEUE}, ${ROUNDS} rounds of ${DURATION} s, ${CONNECTIONS} connections (a = ${A}, b = ${B || 'working tree'})\n`,
  );
  console.log(
    '| | req/s by round | mean req/s | vs baseline | main thread µs/req by round | mean | of which kernel | all threads | sandbox µs/req | load generator µs/req | PostgreSQL + RabbitMQ µs/req | p99 ms by round | p99.9 ms by round |',
  );
  console.log('|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---|');
  for (const [name, r] of Object.entries(results)) {
    const ratio = name === systems[0]!.name ? '-' : (mean(r.reqPerSec) / mean(baseline.reqPerSec)).toFixed(2);
    console.log(
      `| ${name} | ${r.reqPerSec.join(', ')} | ${mean(r.reqPerSec).toFixed(0)} | ${ratio} | ${r.mainUs.join(', ')} | ${mean(r.mainUs).toFixed(0)} | ${mean(r.sysUs).toFixed(0)} | ${mean(r.processUs).toFixed(0)} | ${mean(r.sandboxUs).toFixed(0)} | ${mean(r.loadUs).toFixed(0)} | ${mean(r.serversUs).toFixed(0)} | ${r.p99Ms.map((x) => x.toFixed(1)).join(', ')} | ${r.p999Ms.map((x) => x.toFixed(1)).join(', ')} |`,
    );
  }
  console.log(
    `\npeak RSS (VmHWM) so far, MB: ${systems.map((s) => `${s.name} ${memStatus(s.proc.pid)?.hwmMb.toFixed(0) ?? '?'}`).join(', ')}`,
  );
  const a = results['a']!;
  const b = results['b']!;
  console.log(
    CPU_PROF
      ? `\nrequests answered while profiled (warm-ups, rounds, seeding): ${JSON.stringify(served)}`
      : '',
  );
  console.log(
    `\nb / a: req/s ${(mean(b.reqPerSec) / mean(a.reqPerSec)).toFixed(3)}, main thread µs/req ${(mean(b.mainUs) / mean(a.mainUs)).toFixed(3)}, mean p99 ${(mean(b.p99Ms) / mean(a.p99Ms)).toFixed(3)}, mean p99.9 ${(mean(b.p999Ms) / mean(a.p999Ms)).toFixed(3)}`,
  );
}

async function cleanup(): Promise<void> {
  for (const proc of running.reverse()) await stopProcess(proc, 10_000).catch(() => undefined);
  if (SQL_TIMING) printSqlTiming();
  if (HEAP_SAMPLE) {
    // The profiles name positions in the builds' bundles, which go with tmp: their source maps stay beside them.
    for (const [name, app] of Object.entries(builtApps)) {
      const map = path.join(path.dirname(app.main), 'main.bundle.cjs.map');
      if (existsSync(map)) copyFileSync(map, path.resolve(HEAP_SAMPLE, `${name}.heapprofile.map`));
    }
    printHeapSample();
  }
  if (CPU_PROF) {
    mkdirSync(CPU_PROF, { recursive: true });
    for (const name of ['a', 'b', 'baseline']) {
      const dir = path.join(tmp, `prof-${name}`);
      const file = existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('.cpuprofile')) : undefined;
      if (file) renameSync(path.join(dir, file), path.join(CPU_PROF, `${name}.cpuprofile`));
    }
  }
  await deletePrefixed(RABBITMQ_URL, [`${prefix}.a`, `${prefix}.b`]).catch(() => 0);
  for (const db of pgDatabases) await dropPgDatabase(PG_ADMIN_URL, db).catch(() => undefined);
  for (const dir of worktrees) {
    try {
      execFileSync('git', ['worktree', 'remove', '--force', dir], { cwd: ROOT, stdio: 'ignore' });
    } catch {
      // removed with tmp below; `git worktree prune` forgets it
    }
  }
  if (!KEEP && existsSync(tmp)) rmSync(tmp, { recursive: true, force: true });
  execFileSync('git', ['worktree', 'prune'], { cwd: ROOT, stdio: 'ignore' });
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => cleanup());
