/**
 * Runs the service's CommonJS bundle (dist/src/main.bundle.cjs, scripts/bundle.mjs) with V8's code cache.
 *
 * Why: compiling the ~2.9 MB bundle, then function by function the code a start runs, was ~100 ms of a
 * ~650 ms start on 2 cores. Node 20 has no module compile cache (`module.enableCompileCache` is 22.1+),
 * but `vm.Script` takes and produces V8's cached data for a classic script, which is why the bundle is
 * CommonJS and this loader wraps it as Node's module loader would.
 *
 * The cache sits next to the bundle, named by a hash of the bundle's bytes and one of the Node version,
 * architecture and process flags. V8 checks only the source's length, its own version and its flags (it
 * refuses a cache made under other heap sizes), so without the content hash a rebuilt bundle of the same
 * length would run the old bundle's code. `npm run build` writes the cache for the flags it runs with, the
 * Docker image for its NODE_OPTIONS (./prime.ts). A start that finds none, or one V8 refuses, writes its own
 * once it is up ({@link CachedBundle.saveCache}) if the directory is writable; otherwise it starts without.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

export interface CachedBundle {
  /** The bundle's `module.exports`. */
  readonly exports: Record<string, unknown>;
  /** How the code cache was used: 'used', 'none' (no file), 'rejected' (V8 refused it) or 'off'. */
  readonly cache: 'used' | 'none' | 'rejected' | 'off';
  /** Where this process reads and writes the code cache. */
  readonly cacheFile: string;
  /** Writes the code cache (everything compiled so far) unless one was used; false if it could not. */
  saveCache(): boolean;
}

const SUFFIX = '.v8cache';

/**
 * The cache file for `bundleFile` (whose bytes are `source`) as this process would use it:
 * `<bundle>.<hash of the bytes>.<hash of Node's version, architecture and flags>.v8cache`.
 */
export function cacheFileFor(
  bundleFile: string,
  source: Buffer,
  flags = runtimeFlags(process.execArgv, process.env['NODE_OPTIONS']),
): string {
  const sourceKey = createHash('sha256').update(source).digest('hex').slice(0, 16);
  const runtimeKey = createHash('sha256')
    .update(`${process.version}\0${process.arch}\0${flags}`)
    .digest('hex')
    .slice(0, 8);
  return `${bundleFile}.${sourceKey}.${runtimeKey}${SUFFIX}`;
}

/**
 * The flags a process runs with, from the command line and NODE_OPTIONS alike, in one order (V8 refuses a
 * cache made under other flags, heap sizes included).
 */
export function runtimeFlags(execArgv: readonly string[], nodeOptions: string | undefined): string {
  const fromEnv = (nodeOptions ?? '').split(/\s+/);
  return [...execArgv, ...fromEnv]
    .filter((flag) => flag !== '')
    .sort()
    .join(' ');
}

/**
 * Compiles and evaluates the CommonJS bundle at `bundleFile` with the code cache, and answers its exports.
 * `useCache: false` compiles without one and never writes one.
 */
export function loadBundle(bundleFile: string, opts: { useCache?: boolean } = {}): CachedBundle {
  const useCache = opts.useCache ?? true;
  // Hashed as bytes: hashing the decoded string would cost ~5x as much (~12 ms) for the same answer.
  const bytes = readFileSync(bundleFile);
  const cacheFile = cacheFileFor(bundleFile, bytes);
  const source = bytes.toString('utf8');
  let cachedData: Buffer | undefined;
  if (useCache) {
    try {
      cachedData = readFileSync(cacheFile);
    } catch {
      cachedData = undefined;
    }
  }
  const script = new vm.Script(Module.wrap(source), {
    filename: bundleFile,
    ...(cachedData ? { cachedData } : {}),
  });
  const cache = !useCache ? 'off' : !cachedData ? 'none' : script.cachedDataRejected ? 'rejected' : 'used';
  const wrapper = script.runInThisContext() as (
    exports: unknown,
    require: NodeJS.Require,
    module: { exports: Record<string, unknown> },
    filename: string,
    dirname: string,
  ) => void;
  const mod = { exports: {} as Record<string, unknown> };
  wrapper.call(
    mod.exports,
    mod.exports,
    createRequire(bundleFile),
    mod,
    bundleFile,
    path.dirname(bundleFile),
  );
  let saved = cache === 'used' || cache === 'off';
  return {
    exports: mod.exports,
    cache,
    cacheFile,
    saveCache() {
      if (saved) return false;
      saved = true;
      return writeCache(cacheFile, script.createCachedData());
    },
  };
}

/**
 * Writes the cache atomically (a half-written file would only be refused by V8, but a rename never leaves
 * one) and removes the caches of earlier builds of the bundle (those for other flags of this build stay:
 * processes started with other flags use them). False when the directory is not writable.
 */
function writeCache(cacheFile: string, data: Buffer): boolean {
  const dir = path.dirname(cacheFile);
  const [bundleName, sourceKey] = splitCacheName(path.basename(cacheFile));
  const temp = `${cacheFile}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, data, { mode: 0o644 });
    renameSync(temp, cacheFile);
  } catch {
    try {
      unlinkSync(temp);
    } catch {
      // never created
    }
    return false;
  }
  for (const name of readdirSync(dir)) {
    const [otherBundle, otherSource] = splitCacheName(name);
    if (otherBundle === bundleName && otherSource !== sourceKey) {
      try {
        unlinkSync(path.join(dir, name));
      } catch {
        // another process removed it first
      }
    }
  }
  return true;
}

/** `<bundle>.<source key>.<runtime key>.v8cache` → [bundle, source key]; [null, null] for any other name. */
function splitCacheName(name: string): [string | null, string | null] {
  if (!name.endsWith(SUFFIX)) return [null, null];
  const parts = name.slice(0, -SUFFIX.length).split('.');
  if (parts.length < 3) return [null, null];
  return [parts.slice(0, -2).join('.'), parts.at(-2) ?? null];
}
