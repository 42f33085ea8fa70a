import { describe, expect, it } from 'vitest';
import { DuplicateKeyError, StoreUnavailableError, toStoreError } from '../../src/store/errors.js';

// The shapes better-sqlite3 and node-postgres give a unique violation (both drivers map them where the
// statement runs; tests/store checks that through real databases).
const sqliteUnique = () =>
  Object.assign(new Error('UNIQUE constraint failed: idempotency_keys.owner, idempotency_keys.key'), {
    code: 'SQLITE_CONSTRAINT_UNIQUE',
  });
const pgUnique = () =>
  Object.assign(new Error('duplicate key value violates unique constraint "idempotency_keys_pkey"'), {
    code: '23505',
    detail: 'Key (owner, key)=(acme, secret-customer-value) already exists.',
    table: 'idempotency_keys',
    constraint: 'idempotency_keys_pkey',
  });

describe('toStoreError', () => {
  it('turns a SQLite unique violation into DuplicateKeyError with its table and columns', () => {
    const raw = sqliteUnique();
    const err = toStoreError(raw);
    expect(err).toBeInstanceOf(DuplicateKeyError);
    expect(err).toMatchObject({ table: 'idempotency_keys', columns: ['owner', 'key'], cause: raw });
  });

  it('turns a PostgreSQL unique violation into DuplicateKeyError, keeping the column names but not the values', () => {
    const err = toStoreError(pgUnique()) as DuplicateKeyError;
    expect(err).toBeInstanceOf(DuplicateKeyError);
    expect(err).toMatchObject({
      table: 'idempotency_keys',
      columns: ['owner', 'key'],
      constraint: 'idempotency_keys_pkey',
    });
    expect(err.message).not.toContain('secret-customer-value');
  });

  it('leaves every other failure as it is, and a DuplicateKeyError too', () => {
    const busy = Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });
    expect(toStoreError(busy)).toBe(busy);
    const unsupported = Object.assign(new Error('cannot lock rows in a view'), { code: '0A000' });
    expect(toStoreError(unsupported)).toBe(unsupported);
    const plain = new Error('disk full');
    expect(toStoreError(plain)).toBe(plain);
    const mapped = toStoreError(sqliteUnique());
    expect(toStoreError(mapped)).toBe(mapped);
  });

  it.each([
    ['the server ended the session (pg_terminate_backend, shutdown)', { code: '57P01' }],
    ['statement_timeout', { code: '57014' }],
    ['idle_in_transaction_session_timeout', { code: '25P03' }],
    ['too many connections', { code: '53300' }],
    ['a connection exception', { code: '08006' }],
    ['a reset socket', { code: 'ECONNRESET' }],
    ['a refused connection', { code: 'ECONNREFUSED' }],
    ["node-postgres's end of connection", { message: 'Connection terminated unexpectedly' }],
    ['a query on a closed client', { message: 'Client was closed and is not queryable' }],
    [
      'a prepared statement whose result columns changed under it',
      { code: '0A000', message: 'cached plan must not change result type' },
    ],
  ] as [string, { code?: string; message?: string }][])(
    'turns %s into StoreUnavailableError (a 503), keeping the cause',
    (_what, shape) => {
      const raw = Object.assign(new Error(shape.message ?? 'driver error'), shape);
      const err = toStoreError(raw);
      expect(err).toBeInstanceOf(StoreUnavailableError);
      expect(err).toMatchObject({ code: 'store_unavailable', cause: raw });
    },
  );

  it('leaves statement errors alone: a syntax error or a check violation is not an outage', () => {
    for (const code of ['42601', '23514', '22P02']) {
      const raw = Object.assign(new Error('statement error'), { code });
      expect(toStoreError(raw)).toBe(raw);
    }
  });
});
