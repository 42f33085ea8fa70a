/**
 * Backing services for integration tests. In CI a missing service is a failure, never a skip;
 * on a laptop the suite skips with a loud message so a newcomer sees why.
 */
import { Socket } from 'node:net';
import pg from 'pg';

export const RABBITMQ_URL = process.env.TEST_RABBITMQ_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
export const POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function reachable(port: number, host = '127.0.0.1', timeoutMs = 1500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, host, () => done(true));
  });
}

/** Host and port of a service URL (amqp://, postgres://), with the scheme's default port. */
function endpointOf(url: string, defaultPort: number): { host: string; port: number } {
  const u = new URL(url);
  return { host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : defaultPort };
}

async function available(name: string, url: string, defaultPort: number): Promise<boolean> {
  const { host, port } = endpointOf(url, defaultPort);
  if (await reachable(port, host)) return true;
  const message = `${name} is not reachable on ${host}:${port}`;
  if (process.env.CI) throw new Error(`${message}; CI requires it (see .ci/run)`);
  console.warn(`\n!!! SKIPPING: ${message}. Start it to run these tests. !!!\n`);
  return false;
}

export const rabbitAvailable = () => available('RabbitMQ', RABBITMQ_URL, 5672);
export const postgresAvailable = () => available('PostgreSQL', POSTGRES_URL, 5432);

/** Runs `statements` in order as the shared PostgreSQL's admin user (test roles, settings, clean-up). */
export async function pgAdmin(statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    for (const s of statements) await client.query(s);
  } finally {
    await client.end();
  }
}
