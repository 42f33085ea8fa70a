/**
 * A probe for `node --import`, used by `npm run bench:ab -- --sql-timing=<dir>`: times every better-sqlite3
 * call the main thread makes (Statement#run/get/all, Database#exec, Database#prepare), grouped by SQL text,
 * and writes them as JSON when the process exits. Worker threads (the WAL checkpointer) are left alone.
 * Not part of the service.
 *
 * Where to write comes from the import URL: `--import=file:///…/sqlite-statements.mjs?out=/dir/a.json`.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';

const out = new URL(import.meta.url).searchParams.get('out');
if (isMainThread) install();

function install() {
  if (!out) throw new Error('sqlite-statements probe: give ?out=<file> in the --import URL');

  // The builds bench:ab runs link this checkout's node_modules, so this is the module (and native addon)
  // the service loads.
  const Database = createRequire(import.meta.url)('better-sqlite3');

  const stats = new Map();
  function record(key, started) {
    const us = Number(process.hrtime.bigint() - started) / 1000;
    const s = stats.get(key);
    if (s) {
      s.calls++;
      s.us += us;
    } else stats.set(key, { calls: 1, us });
  }
  function timed(proto, method, keyOf) {
    const original = proto[method];
    proto[method] = function (...args) {
      const started = process.hrtime.bigint();
      try {
        return original.apply(this, args);
      } finally {
        record(keyOf(this, args), started);
      }
    };
  }

  const scratch = new Database(':memory:');
  const Statement = Object.getPrototypeOf(scratch.prepare('select 1'));
  scratch.close();
  for (const method of ['run', 'get', 'all']) timed(Statement, method, (stmt) => `${method} ${stmt.source}`);
  // iterate returns at once; what it costs is spent while the caller steps it, which this does not time.
  timed(Database.prototype, 'exec', (_db, [sql]) => `exec ${sql}`);
  timed(Database.prototype, 'prepare', () => 'prepare (any SQL)');

  process.on('exit', () => {
    const rows = [...stats].map(([sql, s]) => ({ sql, calls: s.calls, us: Math.round(s.us) }));
    rows.sort((x, y) => y.us - x.us);
    writeFileSync(out, JSON.stringify(rows, null, 1));
  });
}
