import { PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { StoreUnavailableError, toStoreError } from './errors.js';
import { preparedStatementName } from './query-template.js';

export interface PostgresOptions {
  connectionString: string;
  schema?: string;
  poolSize: number;
  connectTimeoutMs: number;
  /**
   * How long a statement may go unanswered before it fails with StoreUnavailableError and its connection is
   * closed (pg's query_timeout, and statement_timeout a little above it on the server). Unset: no limit, for
   * migrations (Kysely waits up to an hour for another process's migration lock, and a migration may rightly
   * run long).
   */
  queryTimeoutMs?: number;
  /**
   * PostgreSQL 14 and later: how often the server checks, while a statement runs, that the client is still there
   * (client_connection_check_interval), and ends the session when it is not. Unset: the server's setting (off by
   * default), so a statement of a client that is gone runs on until it has something to send. Ignored by servers
   * before 14, and where the server's platform cannot check.
   */
  clientCheckIntervalMs?: number;
  logger: Logger;
}

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

export function assertSchemaName(schema: string): void {
  if (!SCHEMA_NAME.test(schema)) {
    throw new Error(`invalid PostgreSQL schema name "${schema}": use letters, digits and _`);
  }
}

export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * int8 (bigint amounts, identity ids, COUNT) would otherwise arrive as strings. Amounts in minor
 * units stay far below 2^53, so a JS number is exact. Set per pool, not on pg's global registry,
 * so other pg users in the process are unaffected.
 */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * The server ends a session left idle inside a transaction this long. No transaction of the service waits
 * on anything but its own statements (Stripe is called outside them), so only a client that is gone leaves
 * one idle: without this its row locks (the refund guard's payment row) would be held until the server's
 * TCP stack noticed, which on a silently dead path takes many minutes.
 */
const IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000;
/**
 * TCP keepalive probes start after this much silence on a pooled connection, so a connection whose peer is
 * gone without a word (failover, a firewall forgetting the flow) is found dead and dropped while idle.
 */
const KEEPALIVE_INITIAL_DELAY_MS = 10_000;
/** The server's statement_timeout is this much above the client's, so the client always decides first. */
const SERVER_TIMEOUT_MARGIN_MS = 1_000;

/** pg's error for a query whose answer did not arrive within query_timeout (it sets no code). */
function isQueryTimeout(error: unknown): boolean {
  return error instanceof Error && error.message === 'Query read timeout';
}

export function createPostgresDialect(opts: PostgresOptions): { dialect: PostgresDialect; pool: pg.Pool } {
  if (opts.schema !== undefined) assertSchemaName(opts.schema);
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.poolSize,
    connectionTimeoutMillis: opts.connectTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS,
    ...(opts.queryTimeoutMs !== undefined && { query_timeout: opts.queryTimeoutMs }),
    fallback_application_name: 'stripe-payment-service',
    types,
  });
  // An idle client can lose its server (restart, failover); without a listener pg's 'error' event
  // would crash the process. The pool drops that client and opens a new one on demand.
  pool.on('error', (error) => opts.logger.warn({ err: error }, 'idle PostgreSQL connection failed'));
  /** Clients checked out of the pool: the pool listens for errors on all the others (the line above). */
  const lent = new WeakSet<object>();
  pool.on('acquire', (client) => lent.add(client));
  pool.on('release', (_err, client) => lent.delete(client));
  // The hot statements (query templates) run as named prepared statements: parsed and planned once per
  // connection instead of on every request. Kysely calls client.query(text, values); everything that is
  // not a template's text passes through unchanged. Unique violations come back as DuplicateKeyError
  // (see toStoreError), whoever ran the statement.
  pool.on('connect', (client) => {
    // While a client is checked out the pool listens for nothing on it, so a server that ends the session under
    // a running statement (a restart, a failover, pg_terminate_backend) would emit an 'error' nobody handles and
    // crash the process. The statement itself fails (StoreUnavailableError); the client is dropped on release.
    // Logged only while checked out: an idle client's error reaches the pool's listener, which logs it (logged here
    // too, each idle connection a restart ended was two lines).
    client.on('error', (error) => {
      if (lent.has(client)) opts.logger.warn({ err: error }, 'PostgreSQL connection lost');
    });
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    // pg answers a timed-out query with an error but keeps the connection, still waiting for that answer: handed
    // back to the pool, it would put every later query behind one that may never be answered. It is closed
    // instead (end() destroys the socket while a query is active), which also makes the pool drop it on release.
    // What follows on it (Kysely's ROLLBACK) then fails at once rather than waiting out another timeout.
    let abandoned = false;
    /** Closed after a failure that says the session is gone or unusable (see below). */
    let closed = false;
    const unavailable = (error: unknown): never => {
      if (!abandoned && isQueryTimeout(error)) {
        abandoned = true;
        closed = true;
        opts.logger.warn(
          { timeoutMs: opts.queryTimeoutMs },
          'PostgreSQL did not answer in time; connection closed',
        );
        client.end().catch(() => undefined);
      }
      if (abandoned) throw new StoreUnavailableError('PostgreSQL did not answer in time', { cause: error });
      const mapped = toStoreError(error);
      // A session the server ended (pg_terminate_backend, a restart: 57P01 arrives before the socket closes) is
      // still "queryable" to pg when the statement's error reaches Kysely, which releases it at once: the pool
      // would lend it to the very next statement (a worker's next step), which then fails too. Closed now, the
      // pool drops it on release. Closing costs a reconnect for the rarer outcomes that leave it usable
      // (statement_timeout).
      if (mapped instanceof StoreUnavailableError && !closed) {
        closed = true;
        client.end().catch(() => undefined);
      }
      throw mapped;
    };
    client.query = ((...args: unknown[]) => {
      const [text, values] = args;
      const name = typeof text === 'string' && args.length === 2 ? preparedStatementName(text) : undefined;
      const result = name ? query({ name, text, values }) : query(...args);
      return result instanceof Promise ? result.catch(unavailable) : result;
    }) as typeof client.query;
  });

  // Every connection runs READ COMMITTED, whatever the server, the role or the URL set as its default. The
  // refund guard locks a payment row and then sums its refunds with a fresh snapshot (refunds_committed);
  // under REPEATABLE READ or SERIALIZABLE that sum would come from the snapshot taken before the lock wait,
  // miss a refund committed meanwhile, and let the payment be refunded twice over.
  const setUp = [
    "set default_transaction_isolation to 'read committed'",
    // The server gives up too, so work nobody waits for any more stops there as well.
    ...(opts.queryTimeoutMs === undefined
      ? []
      : [
          `set statement_timeout to ${opts.queryTimeoutMs + SERVER_TIMEOUT_MARGIN_MS}`,
          `set idle_in_transaction_session_timeout to ${Math.max(IDLE_IN_TRANSACTION_TIMEOUT_MS, opts.queryTimeoutMs)}`,
        ]),
    // Only our schema, when one is given.
    ...(opts.schema === undefined ? [] : [`set search_path to ${quoteIdentifier(opts.schema)}`]),
    // A server before 14 does not know the setting, and one on a platform without the check refuses it: both then
    // go on as before rather than fail every connection.
    ...(opts.clientCheckIntervalMs === undefined
      ? []
      : [
          `do $check$ begin
             if current_setting('server_version_num')::int >= 140000 then
               perform set_config('client_connection_check_interval', '${Math.trunc(opts.clientCheckIntervalMs)}', false);
             end if;
           exception when others then null;
           end $check$`,
        ]),
  ].join('; ');
  // Connections that have run setUp. It runs here, not in Kysely's onCreateConnection: a connection whose setup
  // fails (the network drops it, the server ends the session) must be thrown away, and Kysely would keep it
  // checked out for good (lost to the pool: after as many failures as the pool has slots every request waits
  // for a connection that never comes, and pool.end() waits forever).
  const setUpDone = new WeakSet<pg.PoolClient>();
  const dialect = new PostgresDialect({
    pool: {
      connect: async () => {
        let client: pg.PoolClient;
        try {
          client = await pool.connect();
        } catch (error) {
          // A connection that cannot be had in time (the server is down or silent, or every pooled one is busy)
          // is the same outage to a caller as a statement without an answer.
          throw new StoreUnavailableError('no PostgreSQL connection', { cause: error });
        }
        if (!setUpDone.has(client)) {
          try {
            await client.query(setUp);
          } catch (error) {
            // Released with an error, the pool closes it instead of lending it out unset.
            client.release(error instanceof Error ? error : true);
            throw error instanceof StoreUnavailableError
              ? error
              : new StoreUnavailableError('PostgreSQL connection setup failed', { cause: error });
          }
          setUpDone.add(client);
        }
        return client;
      },
      end: () => pool.end(),
    },
  });
  return { dialect, pool };
}
