/**
 * Builds the service into a private directory for the run (same tsc, same tsconfig.build.json as
 * `npm run build`), so a rebuild, a `git checkout` or a cleaned dist/ during the run cannot change or
 * break what is being measured.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

export interface AppSnapshot {
  dir: string;
  main: string;
  sandboxCli: string;
  /** The two baselines, built the way the service is (one esbuild bundle each, run by plain `node`). */
  baselines: { validatorCeiling: string; stripeDirect: string };
}

export function snapshotPaths(dir: string): AppSnapshot {
  return {
    dir,
    // What `npm start` and the Docker image run (scripts/bundle.mjs).
    main: path.join(dir, 'dist/src/main.bundle.mjs'),
    sandboxCli: path.join(dir, 'dist/src/sandbox/cli.js'),
    baselines: {
      validatorCeiling: path.join(dir, 'bench/baselines/validator-ceiling.mjs'),
      stripeDirect: path.join(dir, 'bench/baselines/stripe-direct.mjs'),
    },
  };
}

/**
 * The baselines get the service's treatment: bundled by esbuild with scripts/bundle.mjs's options and
 * run by plain `node`. Run through tsx instead, each SDK call in baseline 2
 * paid for source-mapped stack traces (~4% of its CPU), which flattered the service's ratios.
 */
async function buildBaselines(root: string, app: AppSnapshot): Promise<void> {
  const { build } = await import('esbuild');
  const { BUNDLE_OPTIONS } = (await import(pathToFileURL(path.join(root, 'scripts/bundle.mjs')).href)) as {
    BUNDLE_OPTIONS: Parameters<typeof build>[0];
  };
  for (const [name, outfile] of [
    ['validator-ceiling', app.baselines.validatorCeiling],
    ['stripe-direct', app.baselines.stripeDirect],
  ] as const) {
    await build({
      ...BUNDLE_OPTIONS,
      entryPoints: [path.join(root, 'bench/baselines', `${name}.ts`)],
      outfile,
    });
  }
}

export async function buildSnapshot(root: string, dir: string): Promise<AppSnapshot> {
  const tsc = createRequire(path.join(root, 'package.json')).resolve('typescript/bin/tsc');
  mkdirSync(path.join(dir, 'generated'), { recursive: true });
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json', '--outDir', path.join(dir, 'dist')], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    // tsc still emits on type errors; only a missing entry point stops the run.
    const out = String((err as { stdout?: Buffer }).stdout ?? '');
    process.stderr.write(`warning: tsc reported errors; measuring what it emitted:\n${out.slice(0, 2000)}\n`);
  }
  // The service finds openapi.yaml and generated/ next to dist/, resolves packages from node_modules,
  // and needs "type": "module" from package.json.
  copyFileSync(path.join(root, 'openapi.yaml'), path.join(dir, 'openapi.yaml'));
  for (const file of ['openapi-3.0.json', 'openapi.json'])
    copyFileSync(path.join(root, 'generated', file), path.join(dir, 'generated', file));
  copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  if (!existsSync(path.join(dir, 'node_modules'))) {
    symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  }
  execFileSync(process.execPath, [path.join(root, 'scripts/bundle.mjs'), path.join(dir, 'dist')], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const app = snapshotPaths(dir);
  if (!existsSync(app.main) || !existsSync(app.sandboxCli))
    throw new Error(`the build did not emit ${app.main}`);
  await buildBaselines(root, app);
  return app;
}

/**
 * Writes the service's code cache for the node flags its processes will run with (scripts/bundle.mjs wrote
 * one for none), as the Docker image does for its NODE_OPTIONS: the first start of a run is measured as a
 * deployed start, not as the first start after a build. Builds from before the code cache have nothing to
 * prime.
 */
export function primeCodeCache(app: AppSnapshot, nodeOptions: readonly string[]): void {
  const prime = path.join(app.dir, 'dist/src/launch/prime.js');
  if (!existsSync(prime)) return;
  execFileSync(process.execPath, [...nodeOptions, prime], {
    cwd: app.dir,
    env: { PATH: process.env['PATH'] ?? '' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}
