/**
 * `npm run mock` takes its port from `--port` or MOCK_PORT (4010 by default). With 4010 fixed in package.json,
 * `npm run mock -- --port 4011` handed Prism a second port and it refused to start ("Received [ 4010, 4011 ]"),
 * so a front-end developer whose 4010 was taken could not use the command at all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/processes.js';

const require = createRequire(import.meta.url);
const TSX = require.resolve('tsx');
const root = path.resolve(import.meta.dirname, '../..');
const MOCK_KEY = 'psk_mockmockmockmockmockmockmockmockmock12';

interface Started {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started: Started[] = [];
afterEach(async () => {
  // Whatever a failed test left running: the whole process group (npm, its shell, the script, Prism).
  for (const s of started.splice(0)) {
    if (s.child.exitCode === null && s.child.signalCode === null) {
      try {
        process.kill(-s.child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      await s.exited;
    }
  }
});

/** Starts a command in a process group of its own (as a terminal runs it), collecting its output. */
function start(cmd: string, args: string[], env: Record<string, string> = {}): Started {
  const child = spawn(cmd, args, {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? root, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const s = { child, output: () => out, exited };
  started.push(s);
  return s;
}

/** Resolves once `pattern` is in the output; rejects if the command ends first. */
async function until(s: Started, pattern: RegExp, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let ended = false;
  void s.exited.then(() => (ended = true));
  while (!pattern.test(s.output())) {
    if (ended) throw new Error(`ended before ${pattern}:\n${s.output()}`);
    if (Date.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${s.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether nothing listens on 127.0.0.1:port (any more: asked again for up to 10 s while something does). */
async function refused(port: number): Promise<boolean> {
  const once = () =>
    new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
  for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
    if (await once()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return once();
}

async function refundStatus(port: number, example: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`http://127.0.0.1:${port}/refund-status/unique-id-123`, {
    headers: { Prefer: `example=${example}`, authorization: `Bearer ${MOCK_KEY}` },
  });
  return { status: res.status, body: await res.json() };
}

describe('npm run mock', () => {
  it('serves the contract on the port given with -- --port, and stops on Ctrl-C', async () => {
    const port = await freePort();
    const mock = start('npm', ['run', '-s', 'mock', '--', '--port', String(port)]);
    await until(mock, new RegExp(`Prism is listening on http://127\\.0\\.0\\.1:${port}\\b`));

    const answer = await refundStatus(port, 'succeeded');
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ request_id: 'unique-id-123', status: 'succeeded' });

    // Ctrl-C: the terminal signals the whole foreground group.
    process.kill(-mock.child.pid!, 'SIGINT');
    await mock.exited;
    expect(await refused(port)).toBe(true);
  }, 90_000);

  it('takes MOCK_PORT, and a SIGTERM to the command alone stops Prism too', async () => {
    const port = await freePort();
    const mock = start(process.execPath, ['--import', TSX, path.join(root, 'scripts/mock.ts')], {
      MOCK_PORT: String(port),
    });
    await until(mock, new RegExp(`Prism is listening on http://127\\.0\\.0\\.1:${port}\\b`));
    expect((await refundStatus(port, 'pending')).body).toMatchObject({ status: 'pending' });

    mock.child.kill('SIGTERM');
    expect(await mock.exited).toEqual({ code: null, signal: 'SIGTERM' });
    expect(await refused(port)).toBe(true);
  }, 90_000);

  it('refuses a port that is not one, saying so, and starts nothing', async () => {
    const mock = start(process.execPath, [
      '--import',
      TSX,
      path.join(root, 'scripts/mock.ts'),
      '--port',
      'http',
    ]);
    expect(await mock.exited).toEqual({ code: 2, signal: null });
    expect(mock.output()).toMatch(/--port must be a port number from 1 to 65535 \(got "http"\)/);
    expect(mock.output()).not.toMatch(/Prism/);
  }, 30_000);
});
