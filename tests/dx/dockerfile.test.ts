/**
 * What can be checked about the image without a Docker engine: the Dockerfile's shape, that it copies
 * files that exist and that .dockerignore lets through, that its commands point at what the build emits,
 * and that nothing the runtime imports is a dev dependency (the image installs with --omit=dev).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
const ignore = readFileSync(path.join(root, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  engines: { node: string };
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

// Joins continuation lines so each instruction is one string.
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const args = Object.fromEntries(
  instructions.filter((l) => /^ARG \w+=/.test(l)).map((l) => l.slice(4).split('=') as [string, string]),
);
const expand = (s: string) => s.replace(/\$\{(\w+)\}/g, (_, name: string) => args[name] ?? '');
const stages = instructions.filter((l) => l.startsWith('FROM ')).map((l) => expand(l));
const runtime = instructions.slice(instructions.findLastIndex((l) => l.startsWith('FROM ')));

function excluded(file: string): boolean {
  let out = false;
  for (const pattern of ignore) {
    const negated = pattern.startsWith('!');
    const glob = negated ? pattern.slice(1) : pattern;
    const re = new RegExp(`^${glob.replace(/[.+^$()|[\]]/g, '\\$&').replace(/\*/g, '[^/]*')}(/.*)?$`);
    if (re.test(file)) out = !negated;
  }
  return out;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? walk(full) : [full];
  });
}

describe('Dockerfile', () => {
  it('is multi-stage on one Node LTS base image that package.json engines allow', () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    const bases = new Set(stages.map((s) => s.split(/\s+/)[1]).filter((b) => b?.startsWith('node:')));
    expect(bases.size).toBe(1);
    const [base] = [...bases];
    const major = Number(/^node:(\d+)-bookworm-slim$/.exec(base ?? '')?.[1]);
    expect([22, 24]).toContain(major);
    const [, min, max] = /^>=(\d+)\.\S*\s+<(\d+)$/.exec(pkg.engines.node) ?? [];
    expect(major).toBeGreaterThanOrEqual(Number(min));
    expect(major).toBeLessThan(Number(max));
  });

  it('installs with npm ci, builds with npm run build, and ships production dependencies only', () => {
    expect(instructions).toContain('RUN npm ci --no-audit --no-fund');
    expect(instructions).toContain('RUN npm run build');
    expect(instructions.some((l) => /^RUN npm ci --omit=dev\b/.test(l))).toBe(true);
    // The runtime's node_modules come from the --omit=dev stage, built on the same base image.
    const copy = runtime.find((l) => l.includes('node_modules'));
    expect(copy).toMatch(/^COPY --from=prod-deps /);
    expect(runtime.join('\n')).not.toMatch(/apt-get install|g\+\+/);
  });

  it('runs as a non-root user in production mode, exposes 5000 and checks /healthz', () => {
    expect(runtime).toContain('USER node');
    expect(runtime.some((l) => /^ENV NODE_ENV=production\b/.test(l))).toBe(true);
    expect(runtime).toContain('EXPOSE 5000');
    expect(runtime.find((l) => l.startsWith('HEALTHCHECK'))).toMatch(/\/healthz/);
    expect(runtime.at(-1)).toBe('CMD ["node", "dist/src/main.bundle.mjs"]');
  });

  it('writes the code cache in the runtime stage, under its NODE_OPTIONS, before dropping root', () => {
    const at = (re: RegExp) => runtime.findIndex((l) => re.test(l));
    const prime = at(/^RUN node dist\/src\/launch\/prime\.js$/);
    expect(prime).toBeGreaterThan(at(/^ENV .*NODE_OPTIONS=/));
    expect(prime).toBeGreaterThan(at(/^COPY --from=build \/app\/dist /));
    expect(prime).toBeGreaterThan(at(/^COPY --from=prod-deps /));
    expect(prime).toBeLessThan(at(/^USER node$/));
    expect(existsSync(path.join(root, 'src/launch/prime.ts'))).toBe(true);
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    const sources = instructions
      .filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
      .flatMap((l) => l.slice(5).trim().split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(5);
    for (const source of sources) {
      expect(existsSync(path.join(root, source)), source).toBe(true);
      expect(excluded(source), `${source} is excluded by .dockerignore`).toBe(false);
    }
    for (const secret of ['.env', '.env.production', 'node_modules', '.git', 'dist', 'data']) {
      expect(excluded(secret), secret).toBe(true);
    }
  });

  it('starts programs the build emits (tsconfig.build.json: rootDir ., outDir dist)', () => {
    const build = JSON.parse(readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8')) as {
      include: string[];
    };
    expect(build.include).toContain('src');
    for (const entry of ['src/main.ts', 'src/sandbox/cli.ts'])
      expect(existsSync(path.join(root, entry))).toBe(true);
    expect(dockerfile).toMatch(/dist\/src\/sandbox\/cli\.js/);
  });

  it('needs no dev dependency at run time (the image installs with --omit=dev)', () => {
    const builtins = new Set(builtinModules);
    const offenders: string[] = [];
    const seen = new Set<string>();
    for (const file of [...walk(path.join(root, 'src')), ...walk(path.join(root, 'client'))]) {
      if (!file.endsWith('.ts') || file.endsWith('.d.ts')) continue;
      const code = readFileSync(file, 'utf8');
      const specifiers = [
        ...code.matchAll(/^\s*import\s+(?!type\b)[^'"]*?from\s+['"]([^'"]+)['"]/gm),
        ...code.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm),
        ...code.matchAll(/^\s*export\s+(?!type\b)[^'"]*?from\s+['"]([^'"]+)['"]/gm),
        ...code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
      ].map((m) => m[1]!);
      for (const spec of specifiers) {
        if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        seen.add(name);
        if (!(name in pkg.dependencies)) offenders.push(`${path.relative(root, file)} imports ${name}`);
      }
    }
    expect(offenders).toEqual([]);
    expect([...seen]).toEqual(expect.arrayContaining(['express', 'stripe', 'openapi-fetch']));
  });
});
