/**
 * Why a start failed, in words an operator can act on: the error itself, and which variable to change when the
 * failure is one a setting fixes (a port taken, an address this machine does not have, a database that cannot
 * be opened). Used by the service's "could not start" line and by the commands that open the store.
 */
import { redactDatabaseUrl } from '../store/database-url.js';
import { StoreUnavailableError } from '../store/errors.js';

/** An error's message and those of its causes, e.g. "no PostgreSQL connection (connect ECONNREFUSED 127.0.0.1:5432)". */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  // Each error once, and at most 8 of them: an error can be its own cause (or one of a cycle), and a repeated
  // message adds no part, so the bound on the parts alone let such a chain loop for ever.
  const seen = new Set<unknown>();
  for (let e: unknown = err; e !== undefined && e !== null && parts.length < 4 && seen.size < 8;) {
    if (seen.has(e)) break;
    seen.add(e);
    const message = e instanceof Error ? e.message : String(e);
    if (message && !parts.includes(message)) parts.push(message);
    e = e instanceof Error ? e.cause : undefined;
  }
  const [first, ...rest] = parts;
  return rest.length > 0 ? `${first} (${rest.join(': ')})` : (first ?? 'unknown error');
}

interface SystemError extends Error {
  code?: unknown;
  syscall?: unknown;
  hostname?: unknown;
  address?: unknown;
  port?: unknown;
}

function chain(err: unknown): SystemError[] {
  const out: SystemError[] = [];
  for (let e: unknown = err; e instanceof Error && out.length < 8; e = e.cause) out.push(e);
  return out;
}

/** Errors opening a SQLite file that a different path (or the directory's permissions) fixes. */
const SQLITE_PATH_CODES: ReadonlySet<string> = new Set([
  'EACCES',
  'EPERM',
  'EROFS',
  'ENOTDIR',
  'EEXIST',
  'ENOENT',
  'SQLITE_CANTOPEN',
  'SQLITE_READONLY',
  'SQLITE_PERM',
  'SQLITE_NOTADB',
]);

/** SQLSTATE read_only_sql_transaction: a write refused by a hot standby or under default_transaction_read_only. */
const PG_READ_ONLY = '25006';

/**
 * A write PostgreSQL refused, or the store's own readiness finding that it would (Store.ping(), whose error carries the
 * same SQLSTATE in its cause): told by the code, never by the words of a message.
 */
function refusesWrites(e: SystemError): boolean {
  return e.code === PG_READ_ONLY;
}

export interface StartSettings {
  /** PORT and HOST, for a process that listens. */
  readonly port?: number;
  readonly host?: string;
  readonly database: { readonly url: string };
  /** The embedded sandbox's port when it runs in this process (0 = any free port). */
  readonly sandboxPort?: number | null;
}

/** What to change so the next start succeeds, or null when no setting is to blame. */
export function startFailureAdvice(err: unknown, settings: StartSettings): string | null {
  const errors = chain(err);
  const listen = errors.find((e) => e.syscall === 'listen');
  if (listen) {
    const port = typeof listen.port === 'number' ? listen.port : null;
    // The embedded sandbox listens on 127.0.0.1 (the configuration refuses SANDBOX_PORT equal to PORT).
    if (settings.sandboxPort && port === settings.sandboxPort && listen.address === '127.0.0.1') {
      if (listen.code === 'EADDRINUSE') {
        return `Port ${port} (SANDBOX_PORT, for the embedded Stripe sandbox) is in use by another process: stop it, or set SANDBOX_PORT to a free port (0 picks one)`;
      }
      return `The embedded Stripe sandbox cannot listen on port ${port}: set SANDBOX_PORT to another port (0 picks one)`;
    }
    switch (listen.code) {
      case 'EADDRINUSE':
        return `Port ${port ?? settings.port} is in use by another process (another copy of this service?): stop it, or set PORT to a free port`;
      case 'EADDRNOTAVAIL':
        return `HOST=${settings.host ?? String(listen.address)} is not an address of this machine: set HOST to one of its addresses, 0.0.0.0 for all of them or 127.0.0.1 for this machine only`;
      case 'EACCES':
        return `Listening on port ${port ?? settings.port} needs privileges this process lacks: set PORT to 1024 or above`;
      default:
        return null;
    }
  }
  // Listening on a name looks it up first; a name that does not resolve never reaches listen(). Quoted: a stray
  // space at the end of HOST is what often makes it unresolvable.
  const lookup = errors.find((e) => e.syscall === 'getaddrinfo');
  if (
    lookup &&
    settings.host !== undefined &&
    lookup.hostname === settings.host &&
    !errors.some((e) => e instanceof StoreUnavailableError)
  ) {
    return `HOST=${JSON.stringify(settings.host)} is not a name this machine can resolve: set HOST to one of its addresses or names, 0.0.0.0 for all of them or 127.0.0.1 for this machine only`;
  }
  const url = settings.database.url;
  if (/^postgres/i.test(url)) {
    // Running and reachable, but it takes no writes: the generic advice below sent operators to check what works.
    if (errors.some(refusesWrites)) {
      return `DATABASE_URL (${redactDatabaseUrl(url)}) names a PostgreSQL that refuses writes: point it at the primary, not a standby or read replica, or turn default_transaction_read_only off for that server, database or role`;
    }
    if (errors.some((e) => e instanceof StoreUnavailableError)) {
      return `Check DATABASE_URL (${redactDatabaseUrl(url)}): PostgreSQL must be running and reachable there, and its user, password and database must exist`;
    }
    return null;
  }
  if (errors.some((e) => typeof e.code === 'string' && SQLITE_PATH_CODES.has(e.code))) {
    return `DATABASE_URL=${url} must name a SQLite file this process can create and write, in a directory it can create or write to: fix the permissions, or set DATABASE_URL=sqlite:<another path>`;
  }
  return null;
}

/** "<the error and its causes>. <advice>", the one line a failed start or command prints. */
export function explainStartFailure(err: unknown, settings: StartSettings): string {
  const advice = startFailureAdvice(err, settings);
  return advice ? `${describeError(err)}. ${advice}` : describeError(err);
}
