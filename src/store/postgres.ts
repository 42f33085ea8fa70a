import { CompiledQuery, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Logger } from 'pino';
import { rethrowAsStoreError } from './errors.js';
import { preparedStatementName } from './query-template.js';

export interface PostgresOptions {
  connectionString: string;
  schema?: string;
  poolSize: number;
  connectTimeoutMs: number;
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

export function createPostgresDialect(opts: PostgresOptions): { dialect: PostgresDialect; pool: pg.Pool } {
  if (opts.schema !== undefined) assertSchemaName(opts.schema);
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.poolSize,
    connectionTimeoutMillis: opts.connectTimeoutMs,
    fallback_application_name: 'stripe-payment-service',
    types,
  });
  // An idle client can lose its server (restart, failover); without a listener pg's 'error' event
  // would crash the process. The pool drops that client and opens a new one on demand.
  pool.on('error', (error) => opts.logger.warn({ err: error }, 'idle PostgreSQL connection failed'));
  // The hot statements (query templates) run as named prepared statements: parsed and planned once per
  // connection instead of on every request. Kysely calls client.query(text, values); everything that is
  // not a template's text passes through unchanged. Unique violations come back as DuplicateKeyError
  // (see toStoreError), whoever ran the statement.
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    client.query = ((...args: unknown[]) => {
      const [text, values] = args;
      const name = typeof text === 'string' && args.length === 2 ? preparedStatementName(text) : undefined;
      const result = name ? query({ name, text, values }) : query(...args);
      return result instanceof Promise ? result.catch(rethrowAsStoreError) : result;
    }) as typeof client.query;
  });

  // Every connection runs READ COMMITTED, whatever the server, the role or the URL set as its default. The
  // refund guard locks a payment row and then sums its refunds with a fresh snapshot (refunds_committed);
  // under REPEATABLE READ or SERIALIZABLE that sum would come from the snapshot taken before the lock wait,
  // miss a refund committed meanwhile, and let the payment be refunded twice over.
  const setUp = CompiledQuery.raw(
    [
      "set default_transaction_isolation to 'read committed'",
      // Only our schema, when one is given.
      ...(opts.schema === undefined ? [] : [`set search_path to ${quoteIdentifier(opts.schema)}`]),
    ].join('; '),
  );
  const dialect = new PostgresDialect({
    pool,
    // Runs once per new pooled connection, before its first query.
    onCreateConnection: async (connection) => {
      await connection.executeQuery(setUp);
    },
  });
  return { dialect, pool };
}
