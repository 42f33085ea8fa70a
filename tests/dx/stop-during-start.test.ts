/**
 * A SIGTERM (or SIGINT) that arrives while the service is still starting: a PostgreSQL that takes the connection
 * and never answers (DATABASE_TIMEOUT_MS lets that last up to 10 minutes), a RabbitMQ that does the same. The
 * process stops the start, closes what it had opened, says so in one line and exits 0, as a stop after start-up does,
 * instead of holding the signal until the start is done (the orchestrator's SIGKILL, minutes later).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentServer } from '../helpers/silent-server.js';

const require = createRequire(import.meta.url);
const TSX = require.resolve('tsx');
const root = path.resolve(import.meta.dirname, '../..');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  logged: Record<string, unknown>[];
}

/** Runs src/main.ts until it exits, sending `signal` once a line with message `msg` is logged. */
function runSignalledOn(cwd: string, env: Record<string, string>, msg: string, signal: NodeJS.Signals) {
  const child = spawn(process.execPath, ['--import', TSX, path.join(root, 'src/main.ts')], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: cwd, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let signalled = false;
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (!signalled && out.includes(`"msg":"${msg}"`)) signalled = child.kill(signal);
  });
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  // Only a bound on a test that fails: a process that ignores the signal waits out DATABASE_TIMEOUT_MS.
  const killer = setTimeout(() => child.kill('SIGKILL'), 40_000);
  return new Promise<Run>((resolve) =>
    child.once('close', (code, sig) => {
      clearTimeout(killer);
      const logged = out
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => {
          try {
            return JSON.parse(l) as Record<string, unknown>;
          } catch {
            return { unparsed: l };
          }
        });
      resolve({ code, signal: sig, logged });
    }),
  );
}

describe('a stop asked for during start-up', () => {
  let cwd: string;

  beforeAll(() => {
    cwd = mkdtempSync(path.join(tmpdir(), 'stop-during-start-'));
  });

  afterAll(() => {
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  it('stops a start waiting for a PostgreSQL that does not answer, and exits 0', async () => {
    const pg = await silentServer();
    try {
      const run = await runSignalledOn(
        cwd,
        {
          PORT: '0',
          HOST: '127.0.0.1',
          DATABASE_URL: `postgres://payments@127.0.0.1:${pg.port}/payments`,
          DATABASE_TIMEOUT_MS: '600000',
        },
        'store opening PostgreSQL',
        'SIGTERM',
      );
      expect(run.logged.filter((l) => 'unparsed' in l)).toEqual([]);
      expect(run.signal).toBeNull();
      expect(run.code).toBe(0);
      const last = run.logged.at(-1)!;
      expect(last['signal']).toBe('SIGTERM');
      expect(String(last['msg'])).toBe(
        'stopped before ready: SIGTERM arrived during start-up; what was opened is closed; exiting (code 0)',
      );
      // Not a failed start: nothing fatal, no "could not start".
      expect(run.logged.filter((l) => l['level'] === 60)).toEqual([]);
      expect(run.logged.some((l) => l['msg'] === 'service started')).toBe(false);
    } finally {
      await pg.close();
    }
  }, 60_000);

  it('closes what it opened (store, sandbox, broker) when SIGINT arrives while RabbitMQ does not answer', async () => {
    const rabbit = await silentServer();
    try {
      const run = await runSignalledOn(
        cwd,
        {
          PORT: '0',
          HOST: '127.0.0.1',
          DATABASE_URL: `sqlite:${path.join(cwd, 'ledger.db')}`,
          RABBITMQ_URL: `amqp://guest:guest@127.0.0.1:${rabbit.port}`,
        },
        'dependencies ready',
        'SIGINT',
      );
      expect(run.logged.filter((l) => 'unparsed' in l)).toEqual([]);
      expect(run.code).toBe(0);
      expect(run.logged.at(-1)!['msg']).toMatch(/^stopped before ready: SIGINT arrived during start-up/);
      expect(run.logged.filter((l) => l['level'] === 60 || l['level'] === 50)).toEqual([]);
      expect(run.logged.some((l) => l['msg'] === 'service started')).toBe(false);
    } finally {
      await rabbit.close();
    }
  }, 60_000);
});
