/**
 * The built service (dist/src/main.bundle.mjs, what `npm start` and the image run) as a child process, and a
 * POST that reports a socket error instead of throwing: for the tests that signal or kill the real process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request, type Agent, type RequestOptions } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildSnapshot } from '../../../bench/lib/build.js';
import { jsonLogLines, REPO_ROOT, sleep } from './harness.js';

// ---- the built service as a child process ---------------------------------------------------------

export interface Build {
  /** dist/src/main.bundle.mjs of this build. */
  main: string;
  /** Deletes the build's directory. */
  remove(): void;
}

/** Builds the service as `npm run build` does, into a temp directory named `<prefix>…` of its own. */
export async function buildIntoTemp(prefix: string): Promise<Build> {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  try {
    return {
      main: (await buildSnapshot(REPO_ROOT, dir)).main,
      remove: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

export interface ServiceProcess {
  url: string;
  logs(): Record<string, unknown>[];
  /** Sends `signal`; returns when it was sent. */
  signal(signal: NodeJS.Signals): number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

const children = new Set<ChildProcess>();

/** SIGKILLs every built process still running (test teardown, whatever a test did). */
export function killAllBuilt(): void {
  for (const child of children) child.kill('SIGKILL');
}

/**
 * Starts the built service and resolves once it has started. `signalOn` sends a signal the moment a log line
 * with that message appears (the process may then stop before it has started: `url` is empty).
 */
export async function startBuilt(
  main: string,
  env: Record<string, string>,
  signalOn?: { msg: string; signal: NodeJS.Signals },
): Promise<ServiceProcess> {
  const child = spawn(process.execPath, [main], {
    cwd: path.dirname(path.dirname(path.dirname(main))),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let signalled = false;
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (signalOn && !signalled && out.includes(`"msg":"${signalOn.msg}"`)) {
      signalled = child.kill(signalOn.signal);
    }
  });
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, at: Date.now() });
    }),
  );
  const deadline = Date.now() + 30_000;
  let started: RegExpExecArray | null;
  while (!(started = /"url":"(http:[^"]+)"[^\n]*"msg":"service started"/.exec(out))) {
    if (child.exitCode !== null && signalled) break;
    if (child.exitCode !== null) throw new Error(`the service exited before it started:\n${out}`);
    if (Date.now() > deadline) throw new Error(`the service did not start in time:\n${out}`);
    await sleep(25);
  }
  return {
    url: started?.[1] ?? '',
    logs: () => jsonLogLines(out),
    signal(signal) {
      child.kill(signal);
      return Date.now();
    },
    exited,
  };
}

// ---- HTTP, with and without keep-alive ---------------------------------------------------------------

export interface Answer {
  status: number;
  contentType: string;
  body: string;
  /** The socket error, when there was no answer. */
  error?: string;
}

/** POSTs JSON; a socket error comes back as `error`, never thrown. `agent: false` opens a fresh connection. */
export function post(url: string, body: unknown, agent: Agent | false, timeoutMs = 40_000): Promise<Answer> {
  const payload = JSON.stringify(body);
  const opts: RequestOptions = {
    method: 'POST',
    agent,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    timeout: timeoutMs,
  };
  return new Promise((resolve) => {
    const req = request(url, opts, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'] ?? '', body: text }),
      );
      res.on('error', (err: NodeJS.ErrnoException) =>
        resolve({ status: 0, contentType: '', body: '', error: err.code ?? err.message }),
      );
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('no answer'), { code: 'TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ status: 0, contentType: '', body: '', error: err.code ?? err.message }),
    );
    req.end(payload);
  });
}
