/**
 * `npm run reconcile` and `npm run keys` given what a newcomer mistypes: an unknown option, a missing value, a
 * database that cannot be opened. Each answers one line saying what is wrong and what to do, never a stack trace,
 * and with the exit code its usage documents (reconcile: 1 is drift, so a mistake must not end with 1).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import { startSandbox } from '../../src/sandbox/index.js';
import { createStore } from '../../src/store/index.js';
import { freePort } from '../helpers/processes.js';
import { PG_URL, skipPostgres } from '../store/harness.js';

const require = createRequire(import.meta.url);
const TSX = require.resolve('tsx');
const root = path.resolve(import.meta.dirname, '../..');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

let cwd: string;
beforeAll(() => {
  // A directory of its own, so a developer's .env in the checkout cannot leak in.
  cwd = mkdtempSync(path.join(tmpdir(), 'cli-mistakes-'));
});
afterAll(() => {
  if (cwd) rmSync(cwd, { recursive: true, force: true });
});

function run(
  script: string,
  args: string[],
  env: Record<string, string> = {},
  opts: { closeStdout?: boolean } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, path.join(root, script), ...args], {
      cwd,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: cwd,
        DATABASE_URL: `sqlite:${path.join(cwd, 'ledger.db')}`,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    // A reader that has gone away before the command writes, as `| head` is once it has its lines.
    if (opts.closeStdout) child.stdout.destroy();
    else child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const STACK_LINE = /^\s+at /m;

/** Every file of `folder` with its bytes (hex). */
function filesIn(folder: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(folder).map((f) => [f, readFileSync(path.join(folder, f)).toString('hex')]),
  );
}

describe('npm run reconcile', () => {
  const stripe = { STRIPE_SECRET_KEY: 'sk_test_climistakes', STRIPE_API_BASE: 'http://127.0.0.1:9' };

  it('exits 2 (bad arguments), not 1 (drift), on an unknown option, with the usage and no stack trace', async () => {
    const res = await run('scripts/reconcile.ts', ['--sinse', '24h'], stripe);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/^error: Unknown option '--sinse'/);
    expect(res.stderr).toContain('usage: npm run reconcile -- [--since 24h] [--json]');
    expect(res.stderr).not.toMatch(STACK_LINE);
  }, 30_000);

  it('answers --help with the usage and exit code 0, needing no configuration', async () => {
    const res = await run('scripts/reconcile.ts', ['--help']);
    expect(res.code).toBe(0);
    expect(res.stderr).toBe('');
    expect(res.stdout).toMatch(/^usage: npm run reconcile -- \[--since 24h\] \[--json\]\n/);
    expect(res.stdout).toContain('Exit codes: 0 no drift, 1 drift, 2 bad arguments or configuration, 3 ');
  }, 30_000);

  it('exits 2 when --since has no value', async () => {
    const res = await run('scripts/reconcile.ts', ['--since'], stripe);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^error: Option '--since <value>' argument missing/);
    expect(res.stderr).not.toMatch(STACK_LINE);
  }, 30_000);

  it('exits 3 naming DATABASE_URL when PostgreSQL is not there', async () => {
    const dead = await freePort();
    const res = await run('scripts/reconcile.ts', ['--since', '1h'], {
      ...stripe,
      DATABASE_URL: `postgres://payments:hunter2secret@127.0.0.1:${dead}/payments`,
    });
    expect(res.code).toBe(3);
    expect(res.stderr).toContain(
      `error: reconcile could not finish: no PostgreSQL connection (connect ECONNREFUSED 127.0.0.1:${dead}). Check DATABASE_URL (postgres://payments:***@127.0.0.1:${dead}/payments): PostgreSQL must be running and reachable there`,
    );
    expect(res.stderr).not.toContain('hunter2secret');
    expect(res.stderr).not.toMatch(STACK_LINE);
  }, 30_000);

  // `npm run reconcile | head -1`: its reader gone, the next line's write failed with EPIPE, which ended the process
  // with a stack trace and exit code 1, "drift", though nothing had drifted. The exit code is the comparison's.
  it("exits with the comparison's code, quietly, when its reader closes the pipe early", async () => {
    const secret = 'sk_test_climistakespipe';
    const sandbox = await startSandbox({ secretKey: secret });
    const file = path.join(cwd, 'reconcile-pipe.db');
    await (await createStore({ url: `sqlite:${file}` })).close();
    try {
      const env = { STRIPE_SECRET_KEY: secret, STRIPE_API_BASE: sandbox.url, DATABASE_URL: `sqlite:${file}` };
      for (const args of [
        ['--since', '1h'],
        ['--since', '1h', '--json'],
      ]) {
        const clean = await run('scripts/reconcile.ts', args, env, { closeStdout: true });
        expect(clean.stderr, args.join(' ')).not.toMatch(STACK_LINE);
        expect(clean.stderr).not.toContain('EPIPE');
        expect(clean.code, args.join(' ')).toBe(0);
      }
      // A payment the ledger lacks: drift, exit 1, as with a reader that reads it all.
      const stripeApi = new Stripe(secret, {
        host: '127.0.0.1',
        port: Number(new URL(sandbox.url).port),
        protocol: 'http',
      });
      await stripeApi.paymentIntents.create({ amount: 1000, currency: 'usd' });
      const drift = await run('scripts/reconcile.ts', ['--since', '1h'], env, { closeStdout: true });
      expect(drift.stderr).not.toMatch(STACK_LINE);
      expect(drift.code).toBe(1);
    } finally {
      await sandbox.close();
    }
  }, 60_000);

  // Reconcile only reads: it used to create an empty ledger there and go on comparing it with Stripe.
  it('exits 2 naming the path when the SQLite ledger is not there, and creates none', async () => {
    const res = await run('scripts/reconcile.ts', ['--since', '1h'], {
      ...stripe,
      DATABASE_URL: 'sqlite:./data/payments.db',
    });
    const ledger = path.join(cwd, 'data', 'payments.db');
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain(`error: no ledger at ${ledger}; set DATABASE_URL`);
    expect(res.stderr).not.toMatch(STACK_LINE);
    expect(existsSync(ledger)).toBe(false);
    expect(existsSync(path.dirname(ledger))).toBe(false);
  }, 30_000);

  // Looking for the ledger in a file that is there used to switch it to WAL mode first (rewriting its header and
  // leaving -wal and -shm files beside it): another application's database, or an empty file, came out changed.
  it.each([
    ['an empty file', null],
    ["another application's database", 'delete'],
    ["another application's database in WAL mode", 'wal'],
  ] as const)(
    'exits 2 on %s, and leaves it as it was',
    async (_, journalMode) => {
      const folder = mkdtempSync(path.join(cwd, 'not-a-ledger-'));
      const file = path.join(folder, 'app.db');
      if (journalMode === null) writeFileSync(file, '');
      else {
        const other = new Database(file);
        other.pragma(`journal_mode = ${journalMode}`);
        other.exec("create table notes (body text); insert into notes values ('kept')");
        other.close();
      }
      const before = filesIn(folder);
      expect(Object.keys(before)).toEqual(['app.db']);

      const res = await run('scripts/reconcile.ts', ['--since', '1h'], {
        ...stripe,
        DATABASE_URL: `sqlite:${file}`,
      });
      expect(res.code).toBe(2);
      expect(res.stdout).toBe('');
      expect(res.stderr).toContain(`error: no ledger in the database DATABASE_URL names (sqlite:${file})`);
      expect(res.stderr).not.toMatch(STACK_LINE);
      // The same bytes (the header holds the journal mode) and no -wal or -shm file beside it.
      expect(filesIn(folder)).toEqual(before);
    },
    30_000,
  );

  // Same for PostgreSQL: pointed at a database of its server that is not the ledger (a new one, a mistyped name),
  // it created the service's tables there and reported everything Stripe has as missing from the ledger.
  it.skipIf(skipPostgres)(
    'exits 2 naming DATABASE_URL when the PostgreSQL database has no ledger, and creates nothing there',
    async () => {
      const name = `reconcile_empty_${randomBytes(4).toString('hex')}`;
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      try {
        await admin.query(`create database ${name}`);
        const url = new URL(PG_URL);
        url.pathname = `/${name}`;
        const res = await run('scripts/reconcile.ts', ['--since', '1h'], {
          ...stripe,
          DATABASE_URL: url.toString(),
        });
        expect(res.code).toBe(2);
        expect(res.stdout).toBe('');
        expect(res.stderr).toContain(
          `error: no ledger in the database DATABASE_URL names (${url.toString()}): it has none of the service's tables`,
        );
        expect(res.stderr).not.toMatch(STACK_LINE);

        const empty = new pg.Client({ connectionString: url.toString() });
        await empty.connect();
        try {
          const { rows } = await empty.query(
            `select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'`,
          );
          expect(rows).toEqual([]);
        } finally {
          await empty.end();
        }
      } finally {
        await admin.query(`drop database if exists ${name} with (force)`);
        await admin.end();
      }
    },
    30_000,
  );
});

describe('npm run keys', () => {
  it('exits 2 with the usage on an unknown option, and creates no key', async () => {
    const res = await run('scripts/keys.ts', ['create', 'shop', '--scope', 'payments:write']);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/^error: Unknown option '--scope'/);
    expect(res.stderr).toContain('npm run keys -- create <owner> [--scopes ');
    expect(res.stderr).not.toMatch(STACK_LINE);
    const list = await run('scripts/keys.ts', ['list']);
    expect(list).toMatchObject({ code: 0, stdout: 'no keys\n' });
  }, 30_000);

  it('refuses --scopes with --publishable, whose scopes are fixed, and creates no key', async () => {
    // A publishable key can only start payments whatever it is given: asked for refunds:write, the command made a
    // payments:write key, said so in passing, and exited 0, so a script never learnt that its request was ignored.
    const res = await run('scripts/keys.ts', [
      'create',
      'shop',
      '--publishable',
      '--scopes',
      'refunds:write',
    ]);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toMatch(/^error: --scopes does not apply to --publishable/);
    expect(res.stderr).not.toMatch(STACK_LINE);
    const list = await run('scripts/keys.ts', ['list']);
    expect(list).toMatchObject({ code: 0, stdout: 'no keys\n' });
  }, 30_000);

  it('refuses a --scopes that names no scope, rather than give the key every scope', async () => {
    // `--scopes "$SCOPES"` with the variable empty made a key with all four scopes, refunds:write included.
    const ledger = { DATABASE_URL: `sqlite:${path.join(cwd, 'scopes.db')}` };
    for (const scopes of ['', ' ', ',']) {
      const res = await run('scripts/keys.ts', ['create', 'shop', '--scopes', scopes], ledger);
      expect(res.code, JSON.stringify(scopes)).toBe(1);
      expect(res.stdout).toBe('');
      expect(res.stderr).toBe(
        'error: --scopes names no scope: list one or more of payments:write, payments:read, refunds:write, refunds:read\n',
      );
    }
    expect(await run('scripts/keys.ts', ['list'], ledger)).toMatchObject({ code: 0, stdout: 'no keys\n' });
  }, 30_000);

  it('stops quietly when its reader closes the pipe early (npm run keys -- list | head)', async () => {
    // A ledger of its own, so the other tests still find none.
    const ledger = { DATABASE_URL: `sqlite:${path.join(cwd, 'pipe.db')}` };
    for (const owner of ['shop-a', 'shop-b']) {
      expect((await run('scripts/keys.ts', ['create', owner], ledger)).code).toBe(0);
    }
    const res = await run('scripts/keys.ts', ['list'], ledger, { closeStdout: true });
    expect(res.stderr).not.toMatch(STACK_LINE);
    expect(res.stderr).not.toContain('EPIPE');
    expect(res.code).toBe(0);
  }, 30_000);

  it('says which database it could not open, and how to fix it, without a stack trace', async () => {
    const dead = await freePort();
    const postgres = await run('scripts/keys.ts', ['list'], {
      DATABASE_URL: `postgres://payments:hunter2secret@127.0.0.1:${dead}/payments`,
    });
    expect(postgres.code).toBe(1);
    expect(postgres.stderr).toContain(
      `error: could not open the database: no PostgreSQL connection (connect ECONNREFUSED 127.0.0.1:${dead}). Check DATABASE_URL`,
    );
    expect(postgres.stderr).not.toContain('hunter2secret');
    expect(postgres.stderr).not.toMatch(STACK_LINE);

    const notADirectory = path.join(cwd, 'not-a-directory');
    writeFileSync(notADirectory, '');
    const url = `sqlite:${notADirectory}/payments.db`;
    const sqlite = await run('scripts/keys.ts', ['list'], { DATABASE_URL: url });
    expect(sqlite.code).toBe(1);
    expect(sqlite.stderr).toContain(
      `DATABASE_URL=${url} must name a SQLite file this process can create and write`,
    );
    expect(sqlite.stderr).not.toMatch(STACK_LINE);
  }, 30_000);
});
