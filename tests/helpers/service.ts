/**
 * Starts the real service in-process on port 0, as main.ts would, against SQLite (temp file) or
 * PostgreSQL (a schema of its own), with the embedded Stripe sandbox reached over HTTP by the SDK.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { expect } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { startSandbox } from '../../src/sandbox/index.js';
import { startService, type RunningService, type ServiceOptions } from '../../src/service.js';
import { postJson } from './http.js';
import { captureLogger } from './log-capture.js';
import { POSTGRES_URL } from './services.js';
import { proxyFor, type TcpProxy } from './tcp-proxy.js';

export type Db = 'sqlite' | 'postgres';

export interface TestService extends RunningService {
  lines: string[];
  db: Db;
  /** Sets sandbox faults through its control API. */
  faults(config: Record<string, unknown>): Promise<void>;
  /**
   * PostgreSQL only (the service holds its SQLite file exclusively): runs SQL in the service's schema over a
   * connection of the test's own, as an operator or another process would. Answers the last statement's rows.
   */
  sql(statements: string): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

/** Sets (or, with `{}`, clears) a sandbox's faults through its control API. */
export async function setSandboxFaults(
  sandboxUrl: string,
  faultConfig: Record<string, unknown>,
): Promise<void> {
  const clear = Object.keys(faultConfig).length === 0;
  const res = await fetch(`${sandboxUrl}/_sandbox/faults`, {
    method: clear ? 'DELETE' : 'POST',
    headers: { 'content-type': 'application/json' },
    body: clear ? undefined : JSON.stringify(faultConfig),
  });
  if (!res.ok) throw new Error(`faults: ${res.status} ${await res.text()}`);
}

export interface SharedStripe {
  /** What a process needs to reach it: give it to every process of the deployment. */
  env: { STRIPE_SECRET_KEY: string; STRIPE_API_BASE: string };
  faults(config: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

/**
 * A standalone sandbox, as `npm run sandbox` runs one: the Stripe that ROLE=api and ROLE=worker processes need
 * (each embedded sandbox is its process's own, so the configuration refuses those roles without a key).
 */
export async function startSharedStripe(): Promise<SharedStripe> {
  const secretKey = `sk_test_shared${randomBytes(12).toString('hex')}`;
  const sandbox = await startSandbox({ secretKey });
  return {
    env: { STRIPE_SECRET_KEY: secretKey, STRIPE_API_BASE: sandbox.url },
    faults: (config) => setSandboxFaults(sandbox.url, config),
    close: () => sandbox.close(),
  };
}

export async function startTestService(
  db: Db,
  env: Record<string, string> = {},
  opts: ServiceOptions = {},
): Promise<TestService> {
  const tag = `t${process.pid}_${randomBytes(4).toString('hex')}`;
  let dir: string | undefined;
  let databaseUrl: string;
  let schema: string | undefined;
  if (db === 'sqlite') {
    dir = mkdtempSync(path.join(tmpdir(), 'payments-test-'));
    databaseUrl = `sqlite:${path.join(dir, 'ledger.db')}`;
  } else {
    databaseUrl = POSTGRES_URL;
    schema = tag;
  }
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'debug',
    DATABASE_URL: databaseUrl,
    WORKER_RETRY_DELAYS_MS: '200,400,800',
    ...env,
  });
  const { logger, lines } = captureLogger('debug');
  const service = await startService(config, logger, {
    ...(schema ? { storeSchema: schema } : {}),
    sweepIntervalMs: 500,
    ...opts,
  });
  return {
    ...service,
    deps: service.deps,
    lines,
    db,
    async faults(faultConfig) {
      const sandbox = service.deps.sandbox;
      if (!sandbox) throw new Error('no embedded sandbox');
      await setSandboxFaults(sandbox.url, faultConfig);
    },
    async sql(statements) {
      if (!schema) throw new Error('sql() needs the PostgreSQL store');
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        const results = (await client.query(`SET search_path TO "${schema}"; ${statements}`)) as unknown as {
          rows: Record<string, unknown>[];
        }[];
        return results.at(-1)!.rows;
      } finally {
        await client.end();
      }
    },
    async stop() {
      // A stop that hangs would only show as a hook timeout: say where it waits (service.close logs each step).
      const watchdog = setTimeout(() => {
        const tail = lines.filter((l) => l.includes('shutdown step') || l.includes('"level":5')).slice(-10);
        process.stderr.write(
          `\n!!! test service still stopping after 15 s; last steps:\n${tail.join('\n')}\n`,
        );
      }, 15_000);
      watchdog.unref();
      try {
        await service.close();
      } finally {
        clearTimeout(watchdog);
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
      if (schema) {
        const client = new pg.Client({ connectionString: POSTGRES_URL });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await client.end();
      }
    },
  };
}

export async function eventually<T>(
  fn: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await fn();
  while (!ok(last)) {
    if (Date.now() > deadline) return last;
    await new Promise((r) => setTimeout(r, 50));
    last = await fn();
  }
  return last;
}

/**
 * A client retrying a keyed POST /payment-intent as a 503 told it to, until it is served (not 409 in progress, not
 * 503) or 10 s pass; then checks that it was served a succeeded intent, the only one Stripe holds.
 */
export async function retryPaymentIntentUntilServed(
  svc: TestService,
  body: unknown,
  key: Record<string, string>,
): Promise<Awaited<ReturnType<typeof postJson>>> {
  const retried = await eventually(
    () => postJson(`${svc.url}/payment-intent`, body, key),
    (r) => r.status !== 409 && r.status !== 503,
    10_000,
  );
  expect(retried.status).toBe(200);
  expect(retried.json.status).toBe('succeeded');
  const atStripe = await svc.deps.stripe.paymentIntents.list({ limit: 10 });
  expect(atStripe.data.map((p) => p.id)).toEqual([retried.json.paymentIntentId]);
  return retried;
}

/**
 * A service on PostgreSQL that reaches its database through a TCP proxy the test controls (to silence, delay or
 * cut the database's answers). `env` as for startTestService; DATABASE_URL is the proxy's.
 */
export async function startTestServiceBehindProxy(
  env: Record<string, string> = {},
): Promise<{ proxy: TcpProxy; svc: TestService }> {
  const via = await proxyFor(POSTGRES_URL);
  return { proxy: via.proxy, svc: await startTestService('postgres', { ...env, DATABASE_URL: via.url }) };
}
