/**
 * What an operator's log collector and orchestrator see when the built service (what `npm start` and the image
 * run) cannot start or hits an error nothing handles: the process exits non-zero, so it is restarted, and says
 * why in one JSON log line like every other, never a multi-line stack trace (or a screenful of the bundle's
 * minified source) on stderr.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSnapshot } from '../../bench/lib/build.js';
import { freePort } from '../helpers/processes.js';

const root = path.resolve(import.meta.dirname, '../..');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
}

/** Runs the built service until it exits; `onStarted` runs once it logs "service started". */
function runUntilExit(
  main: string,
  env: Record<string, string>,
  onStarted?: (pid: number) => void,
): Promise<Run> {
  const child = spawn(process.execPath, [main], {
    cwd: path.dirname(path.dirname(path.dirname(main))),
    env: { PATH: process.env['PATH'] ?? '', HOME: tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let started = false;
  const onData = (d: Buffer) => {
    out += d.toString();
    if (!started && out.includes('"msg":"service started"')) {
      started = true;
      onStarted?.(child.pid!);
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
  return new Promise((resolve) =>
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out });
    }),
  );
}

function lines(out: string): string[] {
  return out.split('\n').filter((l) => l.trim() !== '');
}

function parsed(out: string): Record<string, unknown>[] {
  return lines(out).map((l) => {
    try {
      return JSON.parse(l) as Record<string, unknown>;
    } catch {
      return { unparsed: l.slice(0, 200) };
    }
  });
}

/** A run that exited 1 having logged only JSON lines, the last one fatal: its lines, and that last one. */
function fatalExit(run: Run): { logged: Record<string, unknown>[]; last: Record<string, unknown> } {
  expect(run.code).toBe(1);
  const logged = parsed(run.out);
  expect(logged.filter((l) => 'unparsed' in l)).toEqual([]);
  const last = logged.at(-1)!;
  expect(last['level']).toBe(60);
  return { logged, last };
}

describe('the built service when it cannot go on', () => {
  let dir: string;
  let main: string;
  let fixture: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'process-failures-'));
    main = (await buildSnapshot(root, dir)).main;
    // Preloaded into the service: lets a test raise an error nothing in the service handles, at a moment it picks.
    fixture = path.join(dir, 'raise-on-signal.cjs');
    writeFileSync(
      fixture,
      [
        "process.on('SIGUSR2', () => { throw new Error('boom from a test'); });",
        "process.on('SIGHUP', () => { Promise.reject(new Error('rejected in a test')); });",
      ].join('\n'),
    );
  }, 180_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('exits 1 with one fatal JSON line naming the database when PostgreSQL is down at start', async () => {
    const dead = await freePort();
    // Several starts: the fatal line used to overtake a line still being written about one start in five.
    for (let attempt = 0; attempt < 8; attempt++) {
      const run = await runUntilExit(main, {
        PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_URL: `postgres://payments:hunter2secret@127.0.0.1:${dead}/payments`,
      });
      const { logged, last } = fatalExit(run);
      expect(String(last['msg'])).toMatch(/could not start/);
      expect(String(last['msg'])).toMatch(/PostgreSQL/);
      expect(String(last['msg'])).toContain(`127.0.0.1:${dead}`);
      // What to do about it, naming the variable (its password masked).
      expect(String(last['msg'])).toMatch(
        new RegExp(
          `Check DATABASE_URL \\(postgres://payments:[^@]*@127\\.0\\.0\\.1:${dead}/payments\\): PostgreSQL must be running`,
        ),
      );
      expect(logged.filter((l) => l['level'] === 60)).toHaveLength(1);
      expect(run.out).not.toContain('hunter2secret');
    }
  }, 90_000);

  it('exits 1 with one fatal JSON line naming the address when its port is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      const run = await runUntilExit(main, {
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: `sqlite:${path.join(dir, 'port-taken.db')}`,
      });
      const { last } = fatalExit(run);
      expect(String(last['msg'])).toMatch(/could not start/);
      expect(String(last['msg'])).toContain(`127.0.0.1:${port}`);
      expect(String(last['msg'])).toContain(
        `Port ${port} is in use by another process (another copy of this service?): stop it, or set PORT to a free port; exiting`,
      );
    } finally {
      taken.close();
    }
  }, 60_000);

  it("names SANDBOX_PORT, not PORT, when the embedded sandbox's port is taken", async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      const run = await runUntilExit(main, {
        PORT: '0',
        HOST: '127.0.0.1',
        SANDBOX_PORT: String(port),
        DATABASE_URL: `sqlite:${path.join(dir, 'sandbox-port-taken.db')}`,
      });
      expect(run.code).toBe(1);
      const last = parsed(run.out).at(-1)!;
      expect(last['level']).toBe(60);
      expect(String(last['msg'])).toContain(
        `Port ${port} (SANDBOX_PORT, for the embedded Stripe sandbox) is in use by another process: stop it, or set SANDBOX_PORT to a free port (0 picks one); exiting`,
      );
    } finally {
      taken.close();
    }
  }, 60_000);

  it('names HOST when it is not an address of this machine', async () => {
    // TEST-NET-3 (RFC 5737): never assigned to a machine.
    const run = await runUntilExit(main, {
      PORT: '0',
      HOST: '203.0.113.7',
      DATABASE_URL: `sqlite:${path.join(dir, 'bad-host.db')}`,
    });
    expect(run.code).toBe(1);
    const last = parsed(run.out).at(-1)!;
    expect(String(last['msg'])).toMatch(/could not start: listen EADDRNOTAVAIL/);
    expect(String(last['msg'])).toContain(
      'HOST=203.0.113.7 is not an address of this machine: set HOST to one of its addresses',
    );
  }, 60_000);

  it('names HOST when it is a name that does not resolve', async () => {
    // .invalid never resolves (RFC 6761).
    const run = await runUntilExit(main, {
      PORT: '0',
      HOST: 'payments-host.invalid',
      DATABASE_URL: `sqlite:${path.join(dir, 'unresolved-host.db')}`,
    });
    const { last } = fatalExit(run);
    expect(String(last['msg'])).toBe(
      'could not start: getaddrinfo ENOTFOUND payments-host.invalid. HOST="payments-host.invalid" is not a name this machine can resolve: set HOST to one of its addresses or names, 0.0.0.0 for all of them or 127.0.0.1 for this machine only; exiting',
    );
  }, 60_000);

  it('names DATABASE_URL when its SQLite file cannot be created', async () => {
    // A file where the database's directory should be: as unwritable as a read-only directory, even for root.
    const notADirectory = path.join(dir, 'not-a-directory');
    writeFileSync(notADirectory, '');
    const url = `sqlite:${notADirectory}/payments.db`;
    const run = await runUntilExit(main, { PORT: '0', HOST: '127.0.0.1', DATABASE_URL: url });
    expect(run.code).toBe(1);
    const last = parsed(run.out).at(-1)!;
    expect(last['level']).toBe(60);
    expect(String(last['msg'])).toMatch(/^could not start: /);
    expect(String(last['msg'])).toContain(
      `DATABASE_URL=${url} must name a SQLite file this process can create and write`,
    );
  }, 60_000);

  for (const [signal, what] of [
    ['SIGUSR2', 'boom from a test'],
    ['SIGHUP', 'rejected in a test'],
  ] as const) {
    it(`exits 1 with one fatal JSON line on an error nothing handles (${what})`, async () => {
      const run = await runUntilExit(
        main,
        {
          PORT: '0',
          HOST: '127.0.0.1',
          DATABASE_URL: `sqlite:${path.join(dir, `${signal}.db`)}`,
          NODE_OPTIONS: `--require ${fixture}`,
        },
        (pid) => process.kill(pid, signal),
      );
      expect(run.out).toContain('"msg":"service started"');
      const { last } = fatalExit(run);
      expect(JSON.stringify(last)).toContain(what);
    }, 60_000);
  }
});
