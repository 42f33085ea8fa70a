/**
 * startService's `signal` (what main.ts aborts on a SIGTERM or SIGINT during start-up): a start stopped once it had
 * opened its store, its embedded sandbox, its broker connection and its port rejects with StartStopped, and by then
 * every one they could be is closed: no PostgreSQL session of it is left, and the port and the sandbox's take no
 * connection. (The broker's unanswered connection attempt is not: its close() does not end an attempt under way.)
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { startService, StartStopped } from '../../src/service.js';
import { captureLogger } from '../helpers/log-capture.js';
import { freePort } from '../helpers/processes.js';
import { eventually } from '../helpers/service.js';
import { pgAdmin, POSTGRES_URL, postgresAvailable } from '../helpers/services.js';

const pgUp = await postgresAvailable();

/** Whether something accepts a TCP connection on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function sessionsNamed(name: string): Promise<number> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: number }>(
      'select count(*)::int as n from pg_stat_activity where application_name = $1',
      [name],
    );
    return rows[0]!.n;
  } finally {
    await client.end();
  }
}

describe.skipIf(!pgUp)('a start stopped by its signal', () => {
  const schema = `start_stopped_${randomBytes(4).toString('hex')}`;
  const appName = `start-stopped-${randomBytes(4).toString('hex')}`;
  // RabbitMQ that takes the connection and never answers: the start waits for it (its start timeout) once listening.
  const rabbitSockets = new Set<Socket>();
  const rabbit = createServer((s) => {
    rabbitSockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => rabbitSockets.delete(s));
  });

  beforeAll(async () => {
    await new Promise<void>((resolve) => rabbit.listen(0, '127.0.0.1', resolve));
  });
  afterAll(async () => {
    for (const s of rabbitSockets) s.destroy();
    await new Promise<void>((resolve) => rabbit.close(() => resolve()));
    await pgAdmin([`drop schema if exists "${schema}" cascade`]);
  });

  it('closes the store, the sandbox and the server before it rejects', async () => {
    const port = await freePort();
    const url = new URL(POSTGRES_URL);
    url.searchParams.set('application_name', appName);
    const config = loadConfig({
      NODE_ENV: 'test',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'debug',
      // With keys required the start reads them, so a pooled PostgreSQL session is open while it waits.
      API_AUTH: 'on',
      DATABASE_URL: url.toString(),
      RABBITMQ_URL: `amqp://guest:guest@127.0.0.1:${(rabbit.address() as AddressInfo).port}`,
    });
    const { logger, lines } = captureLogger('debug');
    const abort = new AbortController();
    const started = startService(config, logger, { storeSchema: schema, signal: abort.signal });
    const outcome = started.then(
      () => 'started',
      (err: unknown) => err,
    );
    // Listening, with the broker's connection open and unanswered: the start now waits for RabbitMQ.
    expect(await eventually(() => accepts(port), Boolean)).toBe(true);
    expect(
      await eventually(
        async () => rabbitSockets.size,
        (n) => n > 0,
      ),
    ).toBeGreaterThan(0);
    expect(await sessionsNamed(appName)).toBeGreaterThan(0);
    const sandboxUrl = /"sandbox":"(http:[^"]+)"/.exec(lines.join('\n'))?.[1];
    expect(sandboxUrl).toBeDefined();
    const sandboxPort = Number(new URL(sandboxUrl!).port);
    expect(await accepts(sandboxPort)).toBe(true);

    abort.abort();
    expect(await outcome).toBeInstanceOf(StartStopped);
    expect(await accepts(port)).toBe(false);
    expect(await accepts(sandboxPort)).toBe(false);
    expect(await sessionsNamed(appName)).toBe(0);
    expect(lines.filter((l) => /"level":(50|60)/.test(l))).toEqual([]);
    expect(lines.some((l) => l.includes('"msg":"service started"'))).toBe(false);
  }, 60_000);
});
