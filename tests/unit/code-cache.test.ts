/**
 * The launcher's code cache (src/launch/code-cache.ts): a bundle runs the same with or without a cache,
 * a cache is only ever used for the exact bytes it was made from, a cache V8 refuses is replaced, and
 * caches of earlier builds are cleaned up while those for other flags of the same build stay.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cacheFileFor, loadBundle, runtimeFlags } from '../../src/launch/code-cache.js';

/** A CommonJS "bundle" with enough functions for V8 to have something to cache. */
function bundleSource(answer: number): string {
  const helpers = Array.from(
    { length: 50 },
    (_, i) => `function helper${i}(x) { return x + ${i}; }\nexports.helper${i} = helper${i};`,
  ).join('\n');
  return `'use strict';
${helpers}
exports.answer = () => ${answer};
exports.where = () => __filename;
exports.builtin = () => typeof require('node:path').join;
`;
}

const caches = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.v8cache'));

describe('code cache', () => {
  let dir: string;
  let file: string;

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'code-cache-'));
    file = path.join(dir, 'main.bundle.cjs');
    writeFileSync(file, bundleSource(41));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the bundle as a CommonJS module, then with the cache it wrote', () => {
    const first = loadBundle(file);
    expect(first.cache).toBe('none');
    expect((first.exports['answer'] as () => number)()).toBe(41);
    expect((first.exports['where'] as () => string)()).toBe(file);
    expect((first.exports['builtin'] as () => string)()).toBe('function');
    expect(caches(dir)).toEqual([]);

    expect(first.saveCache()).toBe(true);
    expect(caches(dir)).toEqual([path.basename(first.cacheFile)]);
    expect(first.cacheFile).toBe(cacheFileFor(file, readFileSync(file)));
    // Only once per process.
    expect(first.saveCache()).toBe(false);

    const second = loadBundle(file);
    expect(second.cache).toBe('used');
    expect((second.exports['answer'] as () => number)()).toBe(41);
    expect(second.saveCache()).toBe(false);
  });

  it('never uses a cache for other bytes, even of the same length, and drops the old build’s cache', () => {
    const old = loadBundle(file);
    old.saveCache();
    const oldCache = path.basename(old.cacheFile);

    // A rebuild that only changes one digit: V8 alone (which checks the length) would take the old cache.
    writeFileSync(file, bundleSource(42));
    expect(readFileSync(file).length).toBe(bundleSource(41).length);
    const rebuilt = loadBundle(file);
    expect(rebuilt.cache).toBe('none');
    expect((rebuilt.exports['answer'] as () => number)()).toBe(42);

    // A cache of this build for other flags (another runtime key) is kept; the old build's is removed.
    const otherFlags = cacheFileFor(file, readFileSync(file), '--max-old-space-size=64');
    writeFileSync(otherFlags, 'made under other flags');
    expect(rebuilt.saveCache()).toBe(true);
    expect(caches(dir).sort()).toEqual([path.basename(rebuilt.cacheFile), path.basename(otherFlags)].sort());
    expect(caches(dir)).not.toContain(oldCache);
  });

  it('replaces a cache V8 refuses, and runs the bundle anyway', () => {
    const cacheFile = cacheFileFor(file, readFileSync(file));
    writeFileSync(cacheFile, Buffer.alloc(4096, 7));
    const loaded = loadBundle(file);
    expect(loaded.cache).toBe('rejected');
    expect((loaded.exports['answer'] as () => number)()).toBe(41);
    expect(loaded.saveCache()).toBe(true);
    expect(loadBundle(file).cache).toBe('used');
  });

  it('with useCache: false reads and writes nothing', () => {
    loadBundle(file).saveCache();
    const before = caches(dir);
    const off = loadBundle(file, { useCache: false });
    expect(off.cache).toBe('off');
    expect((off.exports['answer'] as () => number)()).toBe(41);
    expect(off.saveCache()).toBe(false);
    expect(caches(dir)).toEqual(before);
  });

  it('keys the cache by the flags a process runs with, on the command line or in NODE_OPTIONS', () => {
    const heap = '--max-old-space-size=128 --max-semi-space-size=8';
    const fromEnv = runtimeFlags([], heap);
    expect(runtimeFlags(['--max-semi-space-size=8', '--max-old-space-size=128'], undefined)).toBe(fromEnv);
    expect(runtimeFlags(['--max-old-space-size=128'], ' --max-semi-space-size=8 ')).toBe(fromEnv);
    const bytes = readFileSync(file);
    expect(cacheFileFor(file, bytes, fromEnv)).not.toBe(cacheFileFor(file, bytes, runtimeFlags([], '')));
    expect(cacheFileFor(file, bytes, fromEnv)).toBe(cacheFileFor(file, bytes, runtimeFlags([], heap)));
  });
});
