/**
 * npm run reconcile -- --since 24h [--json]
 * Compares the ledger (DATABASE_URL) with Stripe (STRIPE_SECRET_KEY / STRIPE_API_BASE) and exits 1 when
 * anything drifted, so it can run from cron or CI; 2 for bad arguments or configuration (a ledger of another
 * version's schema included), 3 when the comparison
 * could not finish (Stripe or the database did not answer).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar, Presets } from 'cli-progress';
import { pino } from 'pino';
import { loadDotenvOrExit, skippedStatementsWarning } from '../src/config/dotenv.js';
import { ConfigError, loadConfig } from '../src/config/index.js';
import { explainStartFailure } from '../src/config/start-failure.js';
import { driftLine, parseDuration, reconcile } from '../src/reconcile/index.js';
import {
  LedgerSchemaError,
  NoLedgerError,
  createStore,
  parseDatabaseUrl,
  redactDatabaseUrl,
} from '../src/store/index.js';
import { scrubSecrets } from '../src/logger.js';
import { createStripeClient } from '../src/stripe/client.js';

const skippedInDotenv = skippedStatementsWarning(loadDotenvOrExit(2));
if (skippedInDotenv) console.error(`warning: ${skippedInDotenv}`);

/**
 * What the command prints on stderr, through the logger's filter: these lines bypass the logger, and Stripe's
 * messages quote part of a key it refuses ("Invalid API Key provided: sk_test_****abcd").
 */
const printError = (text: string) => console.error(scrubSecrets(text));

/**
 * Its reader gone (`npm run reconcile | head -1`), a write failed with EPIPE, unhandled: a stack trace and exit code
 * 1, "drift", whatever the comparison found. The lines left are dropped and the exit code stays the comparison's;
 * a report that could not be written otherwise (a full disk) is exit 3.
 */
let reportUnwritten: Error | null = null;
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') reportUnwritten ??= err;
});

const usage = 'usage: npm run reconcile -- [--since 24h] [--json]';
const help = `${usage}

Compares the ledger (DATABASE_URL) with Stripe (STRIPE_SECRET_KEY, and STRIPE_API_BASE for a Stripe-compatible
server) over the window --since gives (s, m, h or d; default 24h) and lists every drift: what was made in the
window, and what was made earlier that Stripe's events say changed in it. Read-only.
Prints a "checked since ..." line, then one "DRIFT <kind> <id>: <detail>" line per drift; --json prints the same
as one JSON document (since, checked, drifts).
Exit codes: 0 no drift, 1 drift, 2 bad arguments or configuration, 3 Stripe or the database did not answer.
A DATABASE_URL with no ledger, or with one of another version's schema (older or newer), is exit 2: reconcile
never migrates it.`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        since: { type: 'string', default: '24h' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    // Exit code 1 means drift: a mistyped option must not end that way (nor with a stack trace).
    printError(`error: ${(err as Error).message}\n${usage}`);
    return 2;
  }
  if (values.help) {
    console.log(help);
    return 0;
  }
  let config;
  let windowMs: number;
  try {
    config = loadConfig(process.env);
    windowMs = parseDuration(values.since!);
  } catch (err) {
    printError(err instanceof ConfigError ? err.message : `error: ${(err as Error).message}`);
    return 2;
  }
  if (!config.stripe.secretKey) {
    printError(
      'error: reconcile needs STRIPE_SECRET_KEY (and STRIPE_API_BASE for a Stripe-compatible server)',
    );
    return 2;
  }
  // Opening a SQLite path that is not there makes a new, empty ledger: run from another directory than the
  // service's (the default path is relative) or with a mistyped path, reconcile created that file and reported
  // everything Stripe has as missing from the ledger, exit 1, as if the real ledger had drifted.
  const target = parseDatabaseUrl(config.database.url);
  if (target.dialect === 'sqlite' && (target.path === ':memory:' || !existsSync(target.path))) {
    printError(
      `error: no ledger at ${path.resolve(target.path)}; set DATABASE_URL to the service's (a relative sqlite: path is read from the current directory)`,
    );
    return 2;
  }
  const logger = pino({ level: 'silent' });
  let store;
  try {
    // Only a ledger that is there: a PostgreSQL database without one (a new database, a mistyped name) was given
    // the service's tables, and everything Stripe has reported as missing from the ledger, exit 1.
    store = await createStore({ url: config.database.url, logger, existingOnly: true });
  } catch (err) {
    if (err instanceof NoLedgerError) {
      printError(
        `error: no ledger in the database DATABASE_URL names (${redactDatabaseUrl(config.database.url)}): it has none of the service's tables; set DATABASE_URL to the service's database`,
      );
      return 2;
    }
    // A ledger of another version's schema: reconcile only reads, so it does not upgrade one (an older service may
    // still be running on it), and the version it needs is the operator's choice.
    if (err instanceof LedgerSchemaError) {
      printError(`error: ${err.message}`);
      return 2;
    }
    printError(`error: reconcile could not finish: ${explainStartFailure(err, config)}`);
    return 3;
  }
  const stripe = createStripeClient(
    {
      secretKey: config.stripe.secretKey,
      apiBase: config.stripe.apiBase,
      timeoutMs: config.stripe.timeoutMs,
      maxNetworkRetries: 3,
    },
    logger,
  );
  const bar =
    process.stderr.isTTY && !values.json
      ? new SingleBar(
          { format: ' {phase} [{bar}] {value}/{total}', hideCursor: true },
          Presets.shades_classic,
        )
      : null;
  let phase = '';
  try {
    const report = await reconcile({
      store,
      stripe,
      since: new Date(Date.now() - windowMs),
      onProgress: (p) => {
        if (!bar) return;
        if (p.phase !== phase) {
          if (phase) bar.stop();
          phase = p.phase;
          bar.start(p.total ?? 0, 0, { phase });
        }
        if (p.total === null) bar.setTotal(p.done);
        bar.update(p.done, { phase });
      },
    });
    bar?.stop();
    if (values.json) console.log(JSON.stringify(report, null, 2));
    else {
      const c = report.checked;
      console.log(
        `checked since ${report.since}: ${c.payments} payments, ${c.stripePayments} Stripe payments, ${c.stripeRefunds} Stripe refunds, ${c.stripeChanged} made earlier and changed since, ${c.ledgerRefunds} ledger refunds`,
      );
      if (report.drifts.length === 0) console.log('no drift');
      for (const d of report.drifts) console.log(driftLine(d));
    }
    return report.drifts.length > 0 ? 1 : 0;
  } catch (err) {
    // Not drift: the comparison did not finish (Stripe or the database did not answer). A distinct code, so a
    // job alerting on drift can tell the two apart; the message only, as the stack says nothing to an operator.
    bar?.stop();
    printError(`error: reconcile could not finish: ${err instanceof Error ? err.message : String(err)}`);
    return 3;
  } finally {
    bar?.stop();
    await store.close();
  }
}

const code = await main();
if (reportUnwritten) printError(`error: could not write the report: ${(reportUnwritten as Error).message}`);
process.exitCode = reportUnwritten ? 3 : code;
