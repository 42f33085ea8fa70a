/**
 * A probe for `node --import`, used by `npm run bench:ab -- --heap-sample=<dir>`: V8's sampling heap profiler
 * with the objects every scavenge and mark-compact collected kept in the profile, so what it reports is what
 * the process ALLOCATED while sampling (not what is still live), attributed to the allocating stack. Divided
 * by the requests answered meanwhile, that is bytes allocated per request: what feeds the young generation,
 * and so how often it is scavenged and how much in-flight state each scavenge promotes. Not part of the
 * service.
 *
 * Options come from the import URL: `--import=file:///…/heap-sample.mjs?out=/dir/a.heapprofile`, plus
 * `interval=<bytes>` (mean bytes between samples, default 1024; 0 takes no profile, only the collections, so
 * that their count and pauses are those of a process not slowed by the sampler) and `start=signal` (sample from the first
 * SIGUSR2 only, so that start-up and seeding stay out of the figures; without it, from the import on). The
 * profile (Chrome DevTools' .heapprofile format: load it in the Memory tab, or read it with
 * bench/probes/heap-summary.mjs) is written when the process exits, with `<out>.gc.json` beside it: the
 * collections V8 made while sampling, by kind, their count and total pause.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

const params = new URL(import.meta.url).searchParams;
const out = params.get('out');
const interval = Number(params.get('interval') ?? 1024);
if (isMainThread) install();

function install() {
  if (!out) throw new Error('heap-sample probe: give ?out=<file> in the --import URL');
  const session = new Session();
  session.connect();
  // A Session connected to its own thread answers synchronously: the callback runs before post returns,
  // which is what lets the exit handler below stop the profiler and write its profile.
  const post = (method, args) => {
    let result;
    let error;
    session.post(method, args, (err, res) => {
      error = err;
      result = res;
    });
    if (error) throw error;
    return result;
  };

  const KINDS = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental marking',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks',
  };
  const gc = {};
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = KINDS[e.detail?.kind ?? e.kind] ?? String(e.detail?.kind ?? e.kind);
      const g = (gc[kind] ??= { count: 0, ms: 0 });
      g.count++;
      g.ms += e.duration;
    }
  });

  // live=1: only what is still in the heap when sampling stops (what no scavenge nor mark-compact has freed:
  // in-flight requests' objects, what was promoted since the last mark-compact and died there, and what is kept).
  const live = params.get('live') === '1';
  let sampling = false;
  let stopped = false;
  const begin = () => {
    if (sampling) return;
    sampling = true;
    if (interval > 0) {
      post('HeapProfiler.enable');
      post('HeapProfiler.startSampling', {
        samplingInterval: interval,
        includeObjectsCollectedByMajorGC: !live,
        includeObjectsCollectedByMinorGC: !live,
      });
    }
    observer.observe({ entryTypes: ['gc'] });
  };
  const end = () => {
    if (!sampling || stopped) return;
    stopped = true;
    observer.disconnect();
    if (interval > 0) writeFileSync(out, JSON.stringify(post('HeapProfiler.stopSampling').profile));
    writeFileSync(`${out}.gc.json`, JSON.stringify(gc, null, 1));
  };
  // start=signal: the first SIGUSR2 starts sampling; with live=1 the second stops it (under load, so that what
  // the profile holds is what the heap held then).
  if (params.get('start') === 'signal') process.on('SIGUSR2', () => (sampling && live ? end() : begin()));
  else begin();

  process.on('exit', end);
}
