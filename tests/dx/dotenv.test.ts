/**
 * The Python service this one replaces was configured by a `.env` file in its directory holding STRIPE_* and
 * RABBITMQ_* variables. The same file, in the directory the service starts from, configures this one, read as
 * python-dotenv read it (tests/unit/dotenv-python.test.ts has the rules).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, spawnUntil, type Spawned } from '../helpers/processes.js';
import { eventually } from '../helpers/service.js';
import {
  RABBIT_URL,
  deleteEverything,
  listQueues,
  probeRabbit,
  rabbitctl,
  uniquePrefix,
} from '../queue/support/rabbit.js';

const require = createRequire(import.meta.url);
const TSX = require.resolve('tsx');
const root = path.resolve(import.meta.dirname, '../..');
const rabbit = await probeRabbit('.env configuration', true);

describe.skipIf(!rabbit.ok)('a .env file written for the Python service', () => {
  const secret = 'whsec_dotenvCompatibilitySecret0000';
  const prefix = uniquePrefix('dotenv');
  let cwd: string;
  let service: Spawned | undefined;
  let url: string;

  beforeAll(async () => {
    cwd = mkdtempSync(path.join(tmpdir(), 'dotenv-'));
    const port = await freePort();
    const broker = new URL(RABBIT_URL);
    writeFileSync(
      path.join(cwd, '.env'),
      [
        `STRIPE_WEBHOOK_SECRET=${secret}`,
        '',
        `RABBITMQ_HOST=${broker.hostname}`,
        `RABBITMQ_PORT=${broker.port || '5672'}`,
        `RABBITMQ_USER=${decodeURIComponent(broker.username)}`,
        `RABBITMQ_PASSWORD=${decodeURIComponent(broker.password)}`,
        // Not the Python service's: keeps this test's queues apart from every other user of the broker.
        `QUEUE_PREFIX=${prefix}`,
        `PORT=${port}`,
        `DATABASE_URL=sqlite:${path.join(cwd, 'payments.db')}`,
        '',
      ].join('\n'),
    );
    // Nothing from the test's own environment: only the file configures the service.
    service = await spawnUntil(
      process.execPath,
      ['--import', TSX, path.join(root, 'src/main.ts')],
      /"msg":"service started"/,
      { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd }, timeoutMs: 60_000 },
    );
    url = `http://127.0.0.1:${port}`;
  }, 90_000);

  afterAll(async () => {
    await service?.stop();
    await deleteEverything(prefix);
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  it('listens on its PORT and reaches RabbitMQ with its RABBITMQ_* variables', async () => {
    const ready = await eventually(
      async () => (await (await fetch(`${url}/readyz`)).json()) as { checks: { broker: string } },
      (body) => body.checks.broker === 'ok',
    );
    expect(ready.checks.broker).toBe('ok');
    const queues = (await listQueues(prefix)).map((q) => q.name);
    expect(queues).toContain(`${prefix}.stripe_refund_requests`);
    expect(queues).toContain(`${prefix}.stripe_refund_responses`);
  });

  it('verifies webhooks with its STRIPE_WEBHOOK_SECRET', async () => {
    const payload = JSON.stringify({
      id: 'evt_dotenv_1',
      object: 'event',
      type: 'customer.created',
      created: Math.floor(Date.now() / 1000),
      data: { object: { id: 'cus_dotenv_1', object: 'customer' } },
    });
    const send = (signedWith: string) =>
      fetch(`${url}/webhook`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload, secret: signedWith }),
        },
        body: payload,
      });
    expect((await send(secret)).status).toBe(200);
    expect((await send('whsec_notTheOneInDotenv000000000000')).status).toBe(400);
  });
});

/** Starts the service (src/main.ts) in `cwd` with nothing from the test's environment: only `.env` configures it. */
function startIn(cwd: string): Promise<Spawned> {
  return spawnUntil(
    process.execPath,
    ['--import', TSX, path.join(root, 'src/main.ts')],
    /"msg":"service started"/,
    {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: cwd },
      timeoutMs: 60_000,
    },
  );
}

function signedWebhook(url: string, signedWith: string): Promise<Response> {
  const payload = JSON.stringify({
    id: `evt_dotenv_${Date.now()}`,
    object: 'event',
    type: 'customer.created',
    created: Math.floor(Date.now() / 1000),
    data: { object: { id: 'cus_dotenv_2', object: 'customer' } },
  });
  return fetch(`${url}/webhook`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'stripe-signature': Stripe.webhooks.generateTestHeaderString({ payload, secret: signedWith }),
    },
    body: payload,
  });
}

describe.skipIf(!rabbit.ok)('a RABBITMQ_PASSWORD with a # in it, unquoted, as python-dotenv reads it', () => {
  // python-dotenv: a `#` starts a comment only after whitespace, so this password is `pa#ss w0rd`; the dotenv
  // package cut it at the `#` (`pa`), and the broker refused the service.
  const password = 'pa#ss w0rd';
  const user = `dotenv_${process.pid}_${Date.now().toString(36)}`;
  const prefix = uniquePrefix('dotenv-hash');
  const broker = new URL(RABBIT_URL);
  const vhost = decodeURIComponent(broker.pathname.slice(1)) || '/';
  let cwd: string;
  let service: Spawned | undefined;
  let url: string;

  beforeAll(async () => {
    await rabbitctl('add_user', user, password);
    await rabbitctl('set_permissions', '-p', vhost, user, '.*', '.*', '.*');
    cwd = mkdtempSync(path.join(tmpdir(), 'dotenv-hash-'));
    const port = await freePort();
    writeFileSync(
      path.join(cwd, '.env'),
      [
        `RABBITMQ_HOST=${broker.hostname}`,
        `RABBITMQ_PORT=${broker.port || '5672'}`,
        ...(vhost === '/' ? [] : [`RABBITMQ_VHOST=${vhost}`]),
        `RABBITMQ_USER=${user}`,
        `RABBITMQ_PASSWORD=${password}`,
        `QUEUE_PREFIX=${prefix}`,
        `PORT=${port}`,
        `DATABASE_URL=sqlite:${path.join(cwd, 'payments.db')}`,
        '',
      ].join('\n'),
    );
    service = await startIn(cwd);
    url = `http://127.0.0.1:${port}`;
  }, 90_000);

  afterAll(async () => {
    await service?.stop();
    await deleteEverything(prefix);
    await rabbitctl('delete_user', user).catch(() => {});
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  it('reaches RabbitMQ with the whole password', async () => {
    const ready = await eventually(
      async () => (await (await fetch(`${url}/readyz`)).json()) as { checks: { broker: string } },
      (body) => body.checks.broker === 'ok',
    );
    expect(ready.checks.broker).toBe('ok');
    expect((await listQueues(prefix)).map((q) => q.name)).toContain(`${prefix}.stripe_refund_requests`);
  });
});

describe('a .env using python-dotenv syntax: export, quotes, ${VAR} and ${VAR:-default}, comments', () => {
  const secret = 'whsec_dotenvInterpolatedSecret0000';
  let cwd: string;
  let service: Spawned | undefined;
  let url: string;

  beforeAll(async () => {
    cwd = mkdtempSync(path.join(tmpdir(), 'dotenv-syntax-'));
    const port = await freePort();
    writeFileSync(
      path.join(cwd, '.env'),
      [
        '# Stripe',
        `export WEBHOOK_SECRET_BASE = '${secret.slice(0, -4)}'   # shared with the shop`,
        'STRIPE_WEBHOOK_SECRET="${WEBHOOK_SECRET_BASE}0000"',
        `SERVICE_PORT=${port}`,
        'PORT=${SERVICE_PORT:-5000}',
        `DATA_DIR=${cwd}`,
        'DATABASE_URL=sqlite:${DATA_DIR}/payments.db # the ledger',
        '',
      ].join('\n'),
    );
    service = await startIn(cwd);
    url = `http://127.0.0.1:${port}`;
  }, 90_000);

  afterAll(async () => {
    await service?.stop();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  it('listens on the PORT the file expands, keeps its ledger where it says, and verifies with its secret', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(existsSync(path.join(cwd, 'payments.db'))).toBe(true);
    expect((await signedWebhook(url, secret)).status).toBe(200);
    expect((await signedWebhook(url, 'whsec_notTheOneInDotenv000000000000')).status).toBe(400);
  });
});
