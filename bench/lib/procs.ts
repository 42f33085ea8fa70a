/** Child processes of a bench run: start, wait until ready, sample memory, stop by pid. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  readonly startedAt: number;
  readonly logFile: string;
  readonly exited: Promise<number | null>;
  /** Resolves with the first stdout line matching `re` (baselines print their port). */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

export interface StartOptions {
  name: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  logDir: string;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export function startProcess(opts: StartOptions): Proc {
  const logFile = path.join(opts.logDir, `${opts.name.replace(/[^A-Za-z0-9.-]+/g, '_')}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const startedAt = performance.now();
  // Only what we pass: the service must not pick up a developer's .env or shell settings by accident.
  const child = spawn(process.execPath, opts.args, {
    cwd: opts.cwd,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${opts.name}`);
  let stdoutText = '';
  const lineWaiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    log.write(chunk);
    if (lineWaiters.length === 0 && stdoutText.length > 64 * 1024) return;
    stdoutText += chunk.toString('utf8');
    for (const w of [...lineWaiters]) {
      const m = w.re.exec(stdoutText);
      if (m) {
        lineWaiters.splice(lineWaiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => log.write(chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      log.end();
      resolve(code);
    }),
  );
  return {
    name: opts.name,
    pid: child.pid,
    child,
    startedAt,
    logFile,
    exited,
    waitForLine(re, timeoutMs = 20_000) {
      const m = re.exec(stdoutText);
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${opts.name}: no line matching ${re} in ${timeoutMs} ms (see ${logFile})`)),
          timeoutMs,
        );
        lineWaiters.push({
          re,
          resolve: (mm) => {
            clearTimeout(timer);
            resolve(mm);
          },
        });
        void exited.then(() => reject(new Error(`${opts.name} exited early (see ${logFile})`)));
      });
    },
  };
}

function getStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

/** Milliseconds from spawn to the first 200 from GET <base>/healthz. */
export async function waitReady(proc: Proc, base: string, timeoutMs = 30_000): Promise<number> {
  let exitedEarly = false;
  void proc.exited.then(() => {
    exitedEarly = true;
  });
  const deadline = proc.startedAt + timeoutMs;
  for (;;) {
    if ((await getStatus(`${base}/healthz`)) === 200) return performance.now() - proc.startedAt;
    if (exitedEarly) throw new Error(`${proc.name} exited before it was ready (see ${proc.logFile})`);
    if (performance.now() > deadline) throw new Error(`${proc.name} not ready in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface MemStatus {
  rssMb: number;
  hwmMb: number;
}

export function memStatus(pid: number): MemStatus | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return null;
  }
}

/** Samples VmRSS of some processes every `everyMs`; peak() gives each one's highest sample. */
export function sampleRss(procs: readonly Proc[], everyMs = 200) {
  const peaks = new Map<string, number>(procs.map((p) => [p.name, 0]));
  const take = () => {
    for (const p of procs) {
      const s = memStatus(p.pid);
      if (s && s.rssMb > (peaks.get(p.name) ?? 0)) peaks.set(p.name, s.rssMb);
    }
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop(): Record<string, number> {
      clearInterval(timer);
      take();
      return Object.fromEntries(peaks);
    },
  };
}

/**
 * SIGTERM by pid, then SIGKILL if it outlives `graceMs`. Returns the process's lifetime peak RSS
 * (VmHWM) read just before the signal, since /proc is gone once it exits.
 */
export async function stopProcess(proc: Proc, graceMs = 30_000): Promise<MemStatus | null> {
  const mem = memStatus(proc.pid);
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return mem;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
  await proc.exited;
  clearTimeout(timer);
  return mem;
}
