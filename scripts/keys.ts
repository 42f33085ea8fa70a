/**
 * API key administration against the configured store (DATABASE_URL):
 *   npm run keys -- create <owner> [--scopes payments:write,refunds:write | --publishable] [--name "Shop backend"]
 *   npm run keys -- list [owner]
 *   npm run keys -- revoke <key id>
 * The key is printed once on creation; only its hash is stored.
 */
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { createKey, revokeKey, SCOPES } from '../src/auth/api-keys.js';
import { loadDotenvOrExit, skippedStatementsWarning } from '../src/config/dotenv.js';
import { loadConfigOrExit } from '../src/config/index.js';
import { explainStartFailure } from '../src/config/start-failure.js';
import { scrubSecrets } from '../src/logger.js';
import { createStore } from '../src/store/index.js';

const skippedInDotenv = skippedStatementsWarning(loadDotenvOrExit());
if (skippedInDotenv) console.error(`warning: ${skippedInDotenv}`);

/**
 * What the command prints on stderr, through the logger's filter: these lines bypass the logger, and a database's
 * messages may quote part of a secret. The key `create` makes is printed on stdout, as it must be.
 */
const printError = (text: string) => console.error(scrubSecrets(text));

// `npm run keys -- list | head` closes the pipe before the list ends: stop quietly, as other commands do, rather
// than die on an unhandled EPIPE with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

const usage = `usage:
  npm run keys -- create <owner> [--scopes ${SCOPES.join(',')} | --publishable] [--name <text>]
  npm run keys -- list [owner]
  npm run keys -- revoke <key id>`;

/**
 * The scopes `--scopes` lists. Without the option a key gets every scope; an empty value (`--scopes "$SCOPES"` with
 * the variable unset) was taken for no option, and made a key that could refund. It names none: refused.
 */
function scopeList(value: string): string[] {
  const scopes = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (scopes.length === 0)
    throw new Error(`--scopes names no scope: list one or more of ${SCOPES.join(', ')}`);
  return scopes;
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: process.argv.slice(2),
      allowPositionals: true,
      options: {
        scopes: { type: 'string' },
        publishable: { type: 'boolean', default: false },
        name: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    printError(`error: ${(err as Error).message}\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, arg] = positionals;
  if (values.help || !command) {
    console.log(usage);
    return command ? 0 : 2;
  }
  // A publishable key's scopes are fixed (it can only start payments, whatever it is given): creating one with the
  // scopes silently replaced would let a script believe it holds the key it asked for.
  if (values.publishable && values.scopes !== undefined) {
    printError(
      'error: --scopes does not apply to --publishable: a publishable key can only create checkout sessions and ' +
        `unconfirmed payment intents (payments:write); leave out one or the other\n${usage}`,
    );
    return 2;
  }
  const config = loadConfigOrExit(process.env);
  let store;
  try {
    store = await createStore({ url: config.database.url, logger: pino({ level: 'silent' }) });
  } catch (err) {
    printError(`error: could not open the database: ${explainStartFailure(err, config)}`);
    return 1;
  }
  try {
    switch (command) {
      case 'create': {
        if (!arg) throw new Error('create needs an owner');
        const scopes = values.scopes === undefined ? undefined : scopeList(values.scopes);
        const { key, record } = await createKey(store.apiKeys, {
          owner: arg,
          kind: values.publishable ? 'publishable' : 'secret',
          ...(scopes ? { scopes } : {}),
          ...(values.name ? { name: values.name } : {}),
        });
        console.log(
          `created ${record.kind} key ${record.id} for owner "${record.owner}" with scopes ${record.scopes.join(',')}`,
        );
        console.log('\nStore it now; it is not shown again:\n');
        console.log(`  ${key}\n`);
        return 0;
      }
      case 'list': {
        const keys = await store.apiKeys.list(arg);
        for (const k of keys) {
          const state = k.revokedAt ? `revoked ${k.revokedAt}` : `last used ${k.lastUsedAt ?? 'never'}`;
          console.log(`${k.id}\t${k.owner}\t${k.kind}\t${k.prefix}…\t${k.scopes.join(',')}\t${state}`);
        }
        if (keys.length === 0) console.log('no keys');
        return 0;
      }
      case 'revoke': {
        if (!arg) throw new Error('revoke needs a key id');
        // revokeKey: also a provisioned key API_KEYS left out, which a start listing it again would make active.
        const ok = await revokeKey(store.apiKeys, arg);
        // Through the filter: given the key itself rather than its id (a common slip), this printed the key back.
        console.log(scrubSecrets(ok ? `revoked ${arg}` : `no active key ${arg}`));
        return ok ? 0 : 1;
      }
      default:
        printError(usage);
        return 2;
    }
  } catch (err) {
    printError(`error: ${(err as Error).message}`);
    return 1;
  } finally {
    await store.close();
  }
}

process.exitCode = await main();
