/**
 * Reads a V8 CPU profile (`node --cpu-prof`, or what `npm run bench:ab -- --cpu-prof=<dir>` leaves) and prints where
 * the main thread's time went, in µs per request if told how many were answered while profiled:
 *
 *   node bench/probes/cpu-summary.mjs <file.cpuprofile> [--requests=N] [--top=30] [--map=<bundle.map>] [--from=s]
 *
 * --from=<s> leaves out the profile's first s seconds (bench:ab seeds its intents through each build first: pass
 * the seconds seeding took and, as --requests, the requests answered after it).
 * Three views of self time (the samples whose innermost frame is the key):
 * - by package or source file (node_modules/<package>, src/…, node's internals, or a V8 entry such as
 *   (garbage collector) or (program));
 * - by function (name, file and line);
 * - by the innermost frame of the service's own code (src/…) on the stack: which of the service's call sites
 *   led to the time, whatever library spent it (frames with no src/ frame below them are grouped by package).
 * Positions in the bundle are mapped back through its source map: `<bundle>.map` beside it, else `--map=` (bench:ab's
 * builds live in a temporary directory that is gone when the profile is read: pass the map of a build of the same
 * code, e.g. dist/src/main.bundle.cjs.map after `npm run build`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';

const file = process.argv[2];
if (!file)
  throw new Error(
    'usage: node bench/probes/cpu-summary.mjs <file.cpuprofile> [--requests=N] [--top=30] [--map=]',
  );
const option = (name, fallback) => {
  const flag = process.argv.find((a) => a.startsWith(`--${name}=`));
  return flag ? flag.slice(flag.indexOf('=') + 1) : fallback;
};
const requests = Number(option('requests', '0'));
const top = Number(option('top', '30'));
const mapOption = option('map', '');
const fromUs = Number(option('from', '0')) * 1e6;
const profile = JSON.parse(readFileSync(file, 'utf8'));

const maps = new Map();
function sourceMapOf(url) {
  if (!url.startsWith('file://') && !url.startsWith('/')) return null;
  if (maps.has(url)) return maps.get(url);
  const js = url.startsWith('/') ? url : fileURLToPath(url);
  const candidates = [`${js}.map`, ...(js.endsWith('.bundle.cjs') && mapOption ? [mapOption] : [])];
  const found = candidates.find((f) => existsSync(f));
  const map = found ? new SourceMap(JSON.parse(readFileSync(found, 'utf8'))) : null;
  maps.set(url, map);
  return map;
}

const located = new Map();
function locate(callFrame) {
  const key = `${callFrame.url}:${callFrame.lineNumber}:${callFrame.columnNumber}:${callFrame.functionName}`;
  let loc = located.get(key);
  if (loc) return loc;
  loc = {
    file: callFrame.url,
    line: callFrame.lineNumber + 1,
    name: callFrame.functionName || '(anonymous)',
  };
  if (callFrame.url) {
    if (callFrame.url.startsWith('file://')) loc.file = fileURLToPath(callFrame.url);
    const entry = sourceMapOf(callFrame.url)?.findEntry(callFrame.lineNumber, callFrame.columnNumber);
    if (entry?.originalSource) {
      loc.file = entry.originalSource.startsWith('file://')
        ? fileURLToPath(entry.originalSource)
        : entry.originalSource;
      loc.line = entry.originalLine + 1;
    }
  }
  located.set(key, loc);
  return loc;
}

function unitOf(loc) {
  const f = loc.file;
  if (!f) return loc.name.startsWith('(') ? loc.name : '(native or built-in)';
  const nm = f.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = f.slice(nm + 'node_modules/'.length).split('/');
    return `node_modules/${rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  const src = f.lastIndexOf('/src/');
  if (src >= 0) return f.slice(src + 1).replace(/\.[jt]s$/, '');
  if (f.startsWith('node:')) return f;
  return f;
}

const isOwn = (loc) => /(^|\/)src\//.test(loc.file) && !loc.file.includes('node_modules/');

const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Sample durations: timeDeltas[i] is the time before sample i.
const selfUs = new Map();
let total = 0;
let at = 0;
for (let i = 0; i < profile.samples.length; i++) {
  at += profile.timeDeltas[i];
  if (at < fromUs) continue;
  const dt = profile.timeDeltas[i + 1] ?? 0;
  selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
  total += dt;
}

const byUnit = new Map();
const byFunction = new Map();
const bySite = new Map();
let idle = 0;
for (const [id, us] of selfUs) {
  const node = nodes.get(id);
  const loc = locate(node.callFrame);
  if (loc.name === '(idle)') {
    idle += us;
    continue;
  }
  const unit = unitOf(loc);
  byUnit.set(unit, (byUnit.get(unit) ?? 0) + us);
  const fn = `${loc.name} ${unit}:${loc.line}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  let site = null;
  for (let p = id; p !== undefined; p = parent.get(p)) {
    const l = locate(nodes.get(p).callFrame);
    if (isOwn(l)) {
      site = `${l.name} ${unitOf(l)}:${l.line}`;
      break;
    }
  }
  const siteKey = site ?? `(no src frame) ${unit}`;
  bySite.set(siteKey, (bySite.get(siteKey) ?? 0) + us);
}

const busy = total - idle;
const per = (us) => (requests > 0 ? (us / requests).toFixed(1) : (us / 1000).toFixed(0));
const unitLabel = requests > 0 ? 'µs/req' : 'ms';
console.log(
  `${file}: ${(total / 1e6).toFixed(1)} s profiled, ${(busy / 1e6).toFixed(1)} s busy` +
    (requests > 0 ? `, ${requests} requests: ${per(busy)} µs/req busy` : ''),
);
for (const [title, m] of [
  ['self time by package or file', byUnit],
  ['self time by function', byFunction],
  ['self time by innermost src/ frame on the stack', bySite],
]) {
  console.log(`\n${title} (${unitLabel}, % of busy)`);
  for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top))
    console.log(`${per(v).padStart(9)}  ${((100 * v) / busy).toFixed(1).padStart(5)}%  ${k}`);
}
