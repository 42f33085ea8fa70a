/** Base class for errors the store raises on purpose (as opposed to driver failures passed through). */
export class StoreError extends Error {
  override readonly name: string = 'StoreError';
}

/**
 * The database cannot be reached or did not answer in time. The outcome of the statement is unknown (a
 * COMMIT may have been applied), so callers retry the whole operation under the same keys, never blindly.
 */
export class StoreUnavailableError extends StoreError {
  override readonly name = 'StoreUnavailableError';
  readonly code = 'store_unavailable' as const;
}

/**
 * The level background work (the outbox relay, the sweeps, housekeeping) logs its failure at: the database away
 * is a dependency's outage, a warning as the 503 answers to requests meanwhile are, logged each round for as long
 * as it lasts; anything else is an error of the service's own.
 */
export function failureLevel(error: unknown): 'warn' | 'error' {
  return error instanceof StoreUnavailableError ? 'warn' : 'error';
}

/**
 * createStore with `existingOnly`: the database holds no ledger (none of the service's tables: a new database, or
 * another application's). Nothing was created in it.
 */
export class NoLedgerError extends StoreError {
  override readonly name = 'NoLedgerError';
}

/**
 * createStore with `existingOnly`: the ledger's schema is not the one this version expects (older: migrations of this
 * version not applied; newer: migrations applied that this version does not know). Nothing was migrated or changed:
 * a tool that only reads (reconcile) must not upgrade a ledger an older service is still running on.
 */
export class LedgerSchemaError extends StoreError {
  override readonly name = 'LedgerSchemaError';
}

/**
 * A unique or primary-key constraint rejected a write. Raised with the same shape by SQLite and
 * PostgreSQL so callers can treat "already exists" as a domain outcome, not a crash.
 */
export class DuplicateKeyError extends StoreError {
  override readonly name = 'DuplicateKeyError';
  readonly code = 'duplicate_key' as const;

  constructor(
    /** Table the conflict happened on, when the driver says so. */
    readonly table: string | undefined,
    /** Columns of the violated key, e.g. `['request_id']` or `['owner', 'key']`. */
    readonly columns: readonly string[],
    /** Constraint name (PostgreSQL only). */
    readonly constraint: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(
      `duplicate key${table ? ` in ${table}` : ''}${columns.length ? ` (${columns.join(', ')})` : ''}`,
      options,
    );
  }
}

interface DriverError {
  code?: unknown;
  message?: unknown;
  table?: unknown;
  constraint?: unknown;
  detail?: unknown;
}

function asDriverError(error: unknown): DriverError | undefined {
  return typeof error === 'object' && error !== null ? (error as DriverError) : undefined;
}

const SQLITE_UNIQUE_CODES = new Set(['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY']);
const PG_UNIQUE_VIOLATION = '23505';

/**
 * PostgreSQL failures that say nothing about the statement and everything about the connection or the server:
 * connection exceptions (class 08), too many connections, the server shutting down or starting, a session
 * the server cancelled or ended (statement_timeout, idle_in_transaction_session_timeout), and a write refused by a
 * server that takes none (25006 read_only_sql_transaction: a standby, say the old primary after a failover, or
 * default_transaction_read_only). The last closes the connection too, so the next one may reach the new primary.
 */
const PG_READ_ONLY = '25006';
const PG_UNAVAILABLE_CODES = new Set(['53300', '57014', '57P01', '57P02', '57P03', '25P03', PG_READ_ONLY]);
/** Socket errors from node-postgres, which passes them through with the system's code. */
const SOCKET_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
/** node-postgres's own errors for a connection that ended, which carry no code. */
const PG_ENDED =
  /^(Connection terminated|Client was closed and is not queryable|Client has encountered a connection error)/;

/**
 * A prepared statement whose result columns changed under it (a later version's migration): it fails on its
 * connection until the connection closes, so it is that session, not the statement, that is unusable. Statements
 * name their columns (database.ts) so that added ones never do this; this is the net for anything else.
 */
const PG_STALE_PLAN = { code: '0A000', message: /^cached plan must not change result type/ };

function isUnavailable(e: DriverError): boolean {
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code === PG_STALE_PLAN.code) return PG_STALE_PLAN.message.test(String(e.message ?? ''));
  if (code !== undefined) {
    return code.startsWith('08') || PG_UNAVAILABLE_CODES.has(code) || SOCKET_CODES.has(code);
  }
  return PG_ENDED.test(String(e.message ?? ''));
}

/**
 * Turns a driver's unique-violation error into a {@link DuplicateKeyError}, and a lost or refused connection
 * into a {@link StoreUnavailableError}; anything else is returned as is.
 */
export function toStoreError(error: unknown): unknown {
  const e = asDriverError(error);
  if (!e || error instanceof StoreError) return error;
  if (isUnavailable(e)) {
    const message =
      e.code === PG_READ_ONLY ? 'the database refuses writes (read-only)' : 'the database is unavailable';
    return new StoreUnavailableError(message, { cause: error });
  }
  if (typeof e.code === 'string' && SQLITE_UNIQUE_CODES.has(e.code)) {
    // better-sqlite3 only says "UNIQUE constraint failed: refunds.request_id[, table.col]"
    const list = String(e.message ?? '').split('failed:')[1] ?? '';
    const qualified = list
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const table = qualified[0]?.split('.')[0];
    const columns = qualified.map((q) => q.split('.').slice(1).join('.'));
    return new DuplicateKeyError(table, columns, undefined, { cause: error });
  }
  if (e.code === PG_UNIQUE_VIOLATION) {
    // The detail names the key's columns and values; only the column names are kept so that
    // values (which may be customer data) never reach the message.
    const match = /^Key \((.+?)\)=/.exec(String(e.detail ?? ''));
    const columns = match?.[1] ? match[1].split(',').map((s) => s.trim().replace(/^"|"$/g, '')) : [];
    return new DuplicateKeyError(
      typeof e.table === 'string' ? e.table : undefined,
      columns,
      typeof e.constraint === 'string' ? e.constraint : undefined,
      { cause: error },
    );
  }
  return error;
}

const PG_RETRYABLE = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);

/** True for failures that a fresh attempt of the whole transaction may not hit again. */
export function isRetryableError(error: unknown): boolean {
  const code = asDriverError(error)?.code;
  if (typeof code !== 'string') return false;
  return PG_RETRYABLE.has(code) || code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
}

export function isSqliteBusy(error: unknown): boolean {
  const code = asDriverError(error)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}
