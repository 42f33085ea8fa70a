/**
 * CPU accounting for a measured window: how much of the machine the bench's own process tree used,
 * and how much went elsewhere (other users of this machine, and the shared PostgreSQL and RabbitMQ
 * servers). On a shared 2-core box this is what tells a real regression from a noisy neighbour.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

const TICKS = 100; // USER_HZ on Linux

interface Sample {
  at: number;
  machineBusy: number;
  tree: number;
}

function machineBusyTicks(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal ...
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = cpu;
  return user + nice + system + irq + softirq + steal;
}

function readStat(pid: number): { comm: string; ppid: number; ticks: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself contain spaces and parentheses.
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return {
      comm: text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')),
      ppid: Number(f[1]),
      ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]),
    };
  } catch {
    return null;
  }
}

/** utime+stime (+ reaped children) of this process and every live descendant. */
function treeTicks(root: number): number {
  const stats = new Map<number, { ppid: number; ticks: number }>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s) stats.set(Number(name), s);
  }
  const children = new Map<number, number[]>();
  for (const [pid, s] of stats) children.set(s.ppid, [...(children.get(s.ppid) ?? []), pid]);
  let total = 0;
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    total += stats.get(pid)?.ticks ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

/** CPU ticks (utime+stime, all threads) one process has used so far; null once it is gone. */
export function processTicks(pid: number): number | null {
  return readStat(pid)?.ticks ?? null;
}

/**
 * CPU ticks (utime+stime) of a process's main thread alone (its task whose id is the pid): in Node the
 * JavaScript thread, which is what limits throughput; the rest of processTicks is libuv's pool and V8's
 * helper threads (GC, compiler). Null once it is gone.
 */
export function mainThreadTicks(pid: number): number | null {
  const t = mainThreadUserSys(pid);
  return t && t.user + t.sys;
}

/** The main thread's user and system (kernel) ticks apart. Null once it is gone. */
export function mainThreadUserSys(pid: number): { user: number; sys: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]), sys: Number(f[12]) };
  } catch {
    return null;
  }
}

/** Microseconds of CPU per tick (USER_HZ). */
export const US_PER_TICK = 1_000_000 / TICKS;

export function cpuSample(): Sample {
  return { at: performance.now(), machineBusy: machineBusyTicks(), tree: treeTicks(process.pid) };
}

export interface CpuShare {
  /** In cores: 2.0 is a fully busy 2-core machine. */
  machine: number;
  bench: number;
  other: number;
  cores: number;
  loadAverage: number;
}

export function cpuShare(a: Sample, b: Sample): CpuShare {
  const seconds = (b.at - a.at) / 1000;
  const machine = (b.machineBusy - a.machineBusy) / TICKS / seconds;
  const bench = (b.tree - a.tree) / TICKS / seconds;
  const round = (n: number) => Math.round(n * 100) / 100;
  return {
    machine: round(machine),
    bench: round(bench),
    other: round(Math.max(0, machine - bench)),
    cores: os.cpus().length,
    loadAverage: round(os.loadavg()[0] ?? 0),
  };
}

/**
 * CPU ticks used so far by every process whose command name is one of `commands` (e.g. `postgres`: the server
 * and its backends, with the exited ones counted in their parent's reaped-children time; `beam.smp`: RabbitMQ).
 */
export function commandTicks(commands: readonly string[]): number {
  let total = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = readStat(Number(name));
    if (s && commands.includes(s.comm)) total += s.ticks;
  }
  return total;
}
