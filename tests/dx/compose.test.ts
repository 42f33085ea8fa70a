/**
 * docker-compose.yml as docker-compose itself reads it (`docker-compose config`): the services are there,
 * workers can be scaled, the API and worker get the original variable names and a configuration the
 * service accepts, and everything has a health check. No Docker engine is needed.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/index.js';
import { SHUTDOWN_TIMEOUT_MS } from '../../src/main.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const run = promisify(execFile);

interface Service {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string | null>;
  ports?: unknown[];
  container_name?: string;
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string[] | string; disable?: boolean };
  volumes?: unknown[];
  stop_grace_period?: string;
  read_only?: boolean;
  tmpfs?: string[] | string;
  security_opt?: string[];
  cap_drop?: string[];
}

async function composeInstalled(): Promise<boolean> {
  try {
    await run('docker-compose', ['version']);
    return true;
  } catch {
    const message = 'docker-compose is not installed (apt-get install docker-compose)';
    if (process.env.CI) throw new Error(`${message}; CI requires it (see .ci/run)`);
    console.warn(`\n!!! SKIPPING docker-compose tests: ${message}. !!!\n`);
    return false;
  }
}

/** `docker-compose config`, with none of this machine's variables leaking into the interpolation. */
async function composeConfig(vars: Record<string, string> = {}): Promise<Record<string, Service>> {
  const { stdout } = await run('docker-compose', ['-f', 'docker-compose.yml', 'config'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', ...vars },
  });
  return (parse(stdout) as { services: Record<string, Service> }).services;
}

const envOf = (s: Service | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(s?.environment ?? {}).map(([k, v]) => [k, v ?? '']));

const installed = await composeInstalled();

describe.skipIf(!installed)('docker-compose.yml', () => {
  let services: Record<string, Service>;
  beforeAll(async () => {
    services = await composeConfig();
  });

  it('defines rabbitmq, postgres, sandbox, api, worker and mock', () => {
    expect(Object.keys(services).sort()).toEqual([
      'api',
      'mock',
      'postgres',
      'rabbitmq',
      'sandbox',
      'worker',
    ]);
    expect(services.rabbitmq!.image).toBe('rabbitmq:3-management');
    expect(services.postgres!.image).toBe('postgres:16');
    expect(services.mock!.image).toBe('stoplight/prism:5');
  });

  it('gives every service a health check', () => {
    for (const [name, s] of Object.entries(services)) {
      expect(s.healthcheck, name).toBeDefined();
      expect(s.healthcheck!.disable, name).not.toBe(true);
      expect(s.healthcheck!.test, name).toBeTruthy();
    }
    expect(JSON.stringify(services.rabbitmq!.healthcheck!.test)).toContain('rabbitmq-diagnostics');
    expect(JSON.stringify(services.postgres!.healthcheck!.test)).toContain('pg_isready');
    expect(JSON.stringify(services.api!.healthcheck!.test)).toContain('/healthz');
  });

  it('runs the containers built from the Dockerfile read-only, without new privileges or capabilities', () => {
    // With PostgreSQL nothing of the service's is written (its code cache is made at build time), so a
    // compromised process can neither change the code it runs nor gain privileges through a setuid binary.
    for (const name of ['sandbox', 'api', 'worker']) {
      const s = services[name]!;
      expect(s.read_only, name).toBe(true);
      expect([s.tmpfs ?? []].flat(), name).toContain('/tmp');
      expect(s.security_opt ?? [], name).toContain('no-new-privileges:true');
      expect(s.cap_drop ?? [], name).toEqual(['ALL']);
    }
  });

  it('publishes no host port and no fixed name for the worker, so --scale worker=N works', () => {
    expect(services.worker!.ports ?? []).toEqual([]);
    expect(services.worker!.container_name).toBeUndefined();
    expect(envOf(services.worker).ROLE).toBe('worker');
  });

  /** Each published port as host address and port, from either form docker-compose prints. */
  const published = (s: Service | undefined): { ip: string; port: string }[] =>
    (s?.ports ?? []).map((p) => {
      if (typeof p === 'object' && p) {
        const o = p as { published?: unknown; host_ip?: unknown };
        return { ip: String(o.host_ip ?? '0.0.0.0'), port: String(o.published) };
      }
      // "127.0.0.1:5000:5000/tcp" or "5000:5000"
      const parts = String(p).split(':');
      return parts.length === 3 ? { ip: parts[0]!, port: parts[1]! } : { ip: '0.0.0.0', port: parts[0]! };
    });

  it('publishes the api on 5000, RabbitMQ on 5672/15672, the sandbox on 12111 and the mock on 4010', () => {
    expect(published(services.api).map((p) => p.port)).toEqual(['5000']);
    expect(
      published(services.rabbitmq)
        .map((p) => p.port)
        .sort(),
    ).toEqual(['15672', '5672']);
    expect(published(services.sandbox).map((p) => p.port)).toEqual(['12111']);
    expect(published(services.mock).map((p) => p.port)).toEqual(['4010']);
  });

  it('publishes every port on 127.0.0.1 only (guest/guest, the sandbox and the mock have no real protection)', () => {
    const all = Object.entries(services).flatMap(([name, s]) => published(s).map((p) => ({ name, ...p })));
    expect(all.length).toBeGreaterThan(0);
    for (const p of all) expect(p.ip, `${p.name}:${p.port}`).toBe('127.0.0.1');
  });

  it('lets the api be published on another address when asked', async () => {
    const wide = await composeConfig({ API_BIND: '0.0.0.0' });
    expect(published(wide.api)).toEqual([{ ip: '0.0.0.0', port: '5000' }]);
  });

  it('gives the api the original variable names, plus DATABASE_URL and STRIPE_API_BASE', () => {
    const env = envOf(services.api);
    expect(env.ROLE).toBe('api');
    for (const name of [
      'STRIPE_SECRET_KEY',
      'STRIPE_PUBLISHABLE_KEY',
      'STRIPE_WEBHOOK_SECRET',
      'RABBITMQ_HOST',
      'RABBITMQ_PORT',
      'RABBITMQ_USER',
      'RABBITMQ_PASSWORD',
      'DATABASE_URL',
      'STRIPE_API_BASE',
    ]) {
      expect(env[name], name).toBeTruthy();
    }
    expect(env.RABBITMQ_HOST).toBe('rabbitmq');
    expect(env.DATABASE_URL).toMatch(/^postgres:\/\/[^@]+@postgres:5432\//);
    expect(env.STRIPE_API_BASE).toBe('http://sandbox:12111');
    // Defaults are obviously fake test values, never live keys.
    expect(env.STRIPE_SECRET_KEY).toMatch(/^sk_test_/);
    expect(env.STRIPE_PUBLISHABLE_KEY).toMatch(/^pk_test_/);
    expect(env.STRIPE_WEBHOOK_SECRET).toMatch(/^whsec_/);
  });

  it('starts the api and worker only once their dependencies are healthy', () => {
    for (const name of ['api', 'worker']) {
      expect(services[name]!.depends_on, name).toEqual({
        rabbitmq: expect.objectContaining({ condition: 'service_healthy' }),
        postgres: expect.objectContaining({ condition: 'service_healthy' }),
        sandbox: expect.objectContaining({ condition: 'service_healthy' }),
      });
    }
  });

  it('gives the api and worker longer to stop than their own shutdown takes (Docker kills after 10 s)', () => {
    for (const name of ['api', 'worker']) {
      const grace = /^(\d+)s$/.exec(services[name]!.stop_grace_period ?? '');
      expect(grace, name).not.toBeNull();
      expect(Number(grace![1]) * 1000, name).toBeGreaterThan(SHUTDOWN_TIMEOUT_MS);
    }
  });

  it("hands the api and worker a configuration the service's own loader accepts", () => {
    for (const [name, role] of [
      ['api', 'api'],
      ['worker', 'worker'],
    ] as const) {
      const config = loadConfig(envOf(services[name]));
      expect(config.role).toBe(role);
      expect(config.nodeEnv).toBe('production');
      expect(config.stripe.mode).toBe('remote');
      expect(config.stripe.apiBase?.origin).toBe('http://sandbox:12111');
      expect(config.rabbitmq.url).toMatch(/^amqp:\/\/[^@]+@rabbitmq:5672/);
      expect(config.database.url).toMatch(/^postgres:\/\//);
    }
  });

  it('runs the sandbox from the same image, sending signed webhooks to the api with the same secret', () => {
    const sandbox = services.sandbox!;
    expect(sandbox.image).toBe(services.api!.image);
    expect(sandbox.command).toEqual(['node', 'dist/src/sandbox/cli.js']);
    const env = envOf(sandbox);
    expect(env.SANDBOX_WEBHOOK_URL).toBe('http://api:5000/webhook');
    expect(env.SANDBOX_WEBHOOK_SECRET).toBe(envOf(services.api).STRIPE_WEBHOOK_SECRET);
    expect(env.SANDBOX_HOST).toBe('0.0.0.0');
    expect(env.SANDBOX_PORT).toBe('12111');
  });

  it('serves openapi.yaml read-only through Prism', () => {
    const mock = services.mock!;
    expect(mock.command).toEqual(['mock', '-h', '0.0.0.0', '/spec/openapi.yaml']);
    expect(JSON.stringify(mock.volumes)).toMatch(/openapi\.yaml:\/spec\/openapi\.yaml:ro|"read_only":true/);
  });

  it('takes secrets from the environment when they are set', async () => {
    const overridden = await composeConfig({
      STRIPE_SECRET_KEY: 'sk_test_from_environment',
      STRIPE_WEBHOOK_SECRET: 'whsec_from_environment',
      RABBITMQ_PASSWORD: 'rabbit-from-environment',
    });
    expect(envOf(overridden.api).STRIPE_SECRET_KEY).toBe('sk_test_from_environment');
    expect(envOf(overridden.worker).STRIPE_SECRET_KEY).toBe('sk_test_from_environment');
    // Real secrets are the api's and the worker's; the sandbox keeps its own.
    expect(JSON.stringify(overridden.sandbox)).not.toMatch(/from_environment/);
    expect(envOf(overridden.api).RABBITMQ_PASSWORD).toBe('rabbit-from-environment');
    expect(envOf(overridden.rabbitmq).RABBITMQ_DEFAULT_PASS).toBe('rabbit-from-environment');
  });
});
