/**
 * Reads a sampling heap profile written by bench/probes/heap-sample.mjs (or Chrome DevTools' .heapprofile)
 * and prints where the bytes were allocated, per request if told how many were answered while sampling:
 *
 *   node bench/probes/heap-summary.mjs <file.heapprofile> [--requests=N] [--top=25]
 *
 * Three views, each the estimated bytes V8's sampler attributes to a key (the profile's selfSize, which V8
 * scales up from its samples):
 * - by package or source file of the allocating JavaScript frame (a built-in such as JSON.parse or
 *   Array.prototype.map has no file: its allocation goes to the frame that called it);
 * - by function of that frame (name, file and line; built-ins named after it);
 * - by the innermost frame of the service's own code (src/…) on the stack: which of the service's call
 *   sites led to the allocation, whatever library made it.
 * Positions in a bundle with a linked source map (dist/src/main.bundle.cjs.map, or `<file>.map`, where
 * `npm run bench:ab -- --heap-sample=<dir>` leaves each build's) are mapped back to the file the bundle was built from (node_modules/<package>/…, or dist/src/… for the service's compiled TypeScript).
 */
import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const file = process.argv[2];
if (!file)
  throw new Error('usage: node bench/probes/heap-summary.mjs <file.heapprofile> [--requests=N] [--top=25]');
const option = (name, fallback) => {
  const flag = process.argv.find((a) => a.startsWith(`--${name}=`));
  return flag ? flag.slice(flag.indexOf('=') + 1) : fallback;
};
const requests = Number(option('requests', '0'));
const top = Number(option('top', '25'));
const profile = JSON.parse(readFileSync(file, 'utf8'));

const maps = new Map();
function sourceMapOf(url) {
  // vm.Script (the launcher compiles the bundle with V8's code cache) names a script by its path, not a URL.
  if (!url.startsWith('file://') && !url.startsWith('/')) return null;
  if (maps.has(url)) return maps.get(url);
  let map = null;
  const js = url.startsWith('/') ? url : fileURLToPath(url);
  // bench:ab's builds live in a temporary directory: it leaves each bundle's map beside its profile.
  const found = [`${js}.map`, ...(js.endsWith('.bundle.cjs') ? [`${file}.map`] : [])].find((f) =>
    existsSync(f),
  );
  if (found) map = new SourceMap(JSON.parse(readFileSync(found, 'utf8')));
  maps.set(url, map);
  return map;
}

/** { file, line, name } of a call frame, mapped through its bundle's source map when it has one. */
const frames = new Map();
function locate(callFrame) {
  const key = `${callFrame.url}:${callFrame.lineNumber}:${callFrame.columnNumber}:${callFrame.functionName}`;
  let loc = frames.get(key);
  if (loc) return loc;
  loc = { file: '', line: callFrame.lineNumber + 1, name: callFrame.functionName || '(anonymous)' };
  if (callFrame.url) {
    loc.file = callFrame.url.startsWith('file://') ? fileURLToPath(callFrame.url) : callFrame.url;
    const map = sourceMapOf(callFrame.url);
    const entry = map?.findEntry(callFrame.lineNumber, callFrame.columnNumber);
    if (entry?.originalSource) {
      loc.file = entry.originalSource.startsWith('file://')
        ? fileURLToPath(entry.originalSource)
        : entry.originalSource;
      loc.line = entry.originalLine + 1;
    }
  }
  frames.set(key, loc);
  return loc;
}

/** node_modules/<package>, the service's own file (src/…), or node's internal module. */
function unitOf(f) {
  if (!f) return '(no JavaScript frame)';
  const nm = f.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = f.slice(nm + 'node_modules/'.length).split('/');
    return `node_modules/${rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  const src = f.lastIndexOf('/src/');
  if (src >= 0) return f.slice(src + 1).replace(/\.js$/, '');
  if (f.startsWith('node:')) return f;
  return path.basename(f);
}
const isOwn = (loc) => loc.file && !loc.file.includes('node_modules/') && loc.file.lastIndexOf('/src/') >= 0;

const byUnit = new Map();
const byFunction = new Map();
const byOwnSite = new Map();
const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v);
let total = 0;
(function walk(node, stack) {
  const loc = locate(node.callFrame);
  const here = [...stack, loc];
  if (node.selfSize > 0) {
    total += node.selfSize;
    // The innermost frame with a file: built-ins (no file) are charged to their caller.
    let js = null;
    for (let i = here.length - 1; i >= 0 && !js; i--) if (here[i].file) js = here[i];
    const builtin = loc.file ? '' : ` → ${loc.name}`;
    add(byUnit, unitOf(js?.file), node.selfSize);
    add(byFunction, js ? `${js.name} (${unitOf(js.file)}:${js.line})${builtin}` : loc.name, node.selfSize);
    let own = null;
    for (let i = here.length - 1; i >= 0 && !own; i--) if (isOwn(here[i])) own = here[i];
    add(
      byOwnSite,
      own ? `${own.name} (${unitOf(own.file)}:${own.line})` : '(no service frame)',
      node.selfSize,
    );
  }
  for (const child of node.children) walk(child, here);
})(profile.head, []);

const per = (bytes) =>
  requests ? `${(bytes / requests).toFixed(0)} B/req` : `${(bytes / 1024).toFixed(0)} KB`;
const print = (title, m) => {
  console.log(`\n${title}\n`);
  for (const [k, v] of [...m].sort((x, y) => y[1] - x[1]).slice(0, top))
    console.log(`${per(v).padStart(12)}  ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
};
console.log(
  `${file}: ${(total / 1048576).toFixed(1)} MB allocated while sampling${requests ? `, ${requests} requests: ${(total / requests).toFixed(0)} bytes a request` : ''}`,
);
print('By package or source file of the allocating frame:', byUnit);
print('By allocating function:', byFunction);
print("By the service's innermost frame on the stack:", byOwnSite);
