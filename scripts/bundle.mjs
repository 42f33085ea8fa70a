/**
 * Bundles the compiled service (dist/src/main.js and everything it imports) into one CommonJS file,
 * dist/src/main.bundle.cjs, and the launcher (dist/src/launch/start.js) into dist/src/main.bundle.mjs,
 * which `npm start`, `npm run worker` and the Docker image run. The launcher compiles the bundle with V8's
 * code cache (src/launch/code-cache.ts); this script writes that cache, dist/src/main.bundle.cjs.<key>.v8cache,
 * for the NODE_OPTIONS it runs under (src/launch/prime.ts, in a child process: the service started once in
 * embedded mode on an ephemeral port with an in-memory database, then stopped).
 *
 * Why: Node 20 resolves, reads and links every module file separately; Kysely alone is ~260 files and
 * the whole graph ~1,200, which was ~300 ms of a ~900 ms start. One file starts in ~600 ms. The
 * bundle stays next to dist/src/main.js so the paths it resolves from import.meta.url (openapi.yaml,
 * generated/, the demo's assets) are the same. Native or path-bound packages stay external and are
 * loaded from node_modules: better-sqlite3 (native addon), pg-native (pg's optional native driver),
 * swagger-ui-dist (serves its own files from its package directory), and iconv-lite: body-parser needs its
 * code tables only for a body in a charset other than UTF-8, but bundled they were ~0.5 MB of the ~3.8 MB
 * that V8 parses at every start; from node_modules they load when such a body first arrives.
 *
 * It also copies the demo storefront's static files to dist/src/demo/public (tsc copies only .ts output),
 * where both the bundle and dist/src/demo/mount.js find them.
 *
 * Usage: node scripts/bundle.mjs [distDir]   (default: dist)
 */
import { execFileSync } from 'node:child_process';
import { cpSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

/** How every Node bundle of this project is built (the service here; the bench's baselines reuse it). */
export const BUNDLE_OPTIONS = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // Whitespace and syntax only: names stay, so stack traces and logged error names read as in the source.
  minifyWhitespace: true,
  minifySyntax: true,
  keepNames: true,
  // CommonJS packages inside an ES module bundle still call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __bundleRequire } from 'node:module'; const require = __bundleRequire(import.meta.url);",
  },
  logLevel: 'warning',
};

/**
 * `require('debug')` in the service's bundle (express, router, body-parser, finalhandler and send each make
 * their loggers with it): with DEBUG unset, a function that does nothing. The package's own logger, disabled,
 * still takes its arguments as a rest array and reads its `enabled` getter on every call, and the router makes
 * two or three such calls for every layer a request passes: ~0.8 KB allocated per POST /payment-intent and
 * ~4 KB per POST /refund-async (`npm run bench:ab -- --heap-sample=<dir>`), garbage that brings the next
 * scavenge closer. With DEBUG set when the process starts (the only time the package reads it too), every
 * logger is the package's own, loaded then, so `DEBUG=router,express:*` works as before.
 */
export const quietDebug = {
  name: 'quiet-debug',
  setup(build) {
    build.onResolve({ filter: /^debug$/ }, (args) =>
      // The shim's own require('debug') is the package, found from the importer's directory (packages may
      // depend on different versions of it).
      args.namespace === 'quiet-debug' ? undefined : { path: args.resolveDir, namespace: 'quiet-debug' },
    );
    build.onLoad({ filter: /.*/, namespace: 'quiet-debug' }, (args) => ({
      resolveDir: args.path,
      loader: 'js',
      contents: `
        function createDebug(namespace) {
          if (process.env.DEBUG) return require('debug')(namespace);
          const debug = function debug() {};
          debug.namespace = namespace;
          debug.enabled = false;
          debug.extend = (sub, delimiter) => createDebug(namespace + (delimiter === undefined ? ':' : delimiter) + sub);
          return debug;
        }
        module.exports = createDebug;
      `,
    }));
  },
};

// Imported for BUNDLE_OPTIONS (bench/lib/build.ts), it builds nothing.
if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
  const dist = path.resolve(root, process.argv[2] ?? 'dist');

  const bundle = path.join(dist, 'src/main.bundle.cjs');
  await build({
    ...BUNDLE_OPTIONS,
    entryPoints: [path.join(dist, 'src/main.js')],
    outfile: bundle,
    // CommonJS, because only a classic script can be compiled with V8's cached data on Node 20. The
    // modules' import.meta.url is the bundle's own URL, as it was when the bundle was an ES module.
    format: 'cjs',
    banner: { js: "const __bundleImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
    define: { 'import.meta.url': '__bundleImportMetaUrl' },
    external: ['better-sqlite3', 'pg-native', 'swagger-ui-dist', 'iconv-lite'],
    sourcemap: 'linked',
    plugins: [quietDebug],
  });
  await build({
    ...BUNDLE_OPTIONS,
    entryPoints: [path.join(dist, 'src/launch/start.js')],
    outfile: path.join(dist, 'src/main.bundle.mjs'),
  });
  // In a child (the primed service leaves timers and handles behind), with this process's NODE_OPTIONS: the
  // cache is for the flags the service will be started with.
  // An optimisation only: a build whose cache could not be made still starts, ~100 ms slower.
  try {
    execFileSync(process.execPath, [path.join(dist, 'src/launch/prime.js')], {
      stdio: ['ignore', 'ignore', 'inherit'],
      timeout: 60_000,
    });
  } catch (err) {
    console.warn(`warning: no code cache for the bundle (${err.message})`);
  }

  cpSync(path.join(root, 'src/demo/public'), path.join(dist, 'src/demo/public'), { recursive: true });
}
