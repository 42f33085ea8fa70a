import { describe, expect, it } from 'vitest';
import { DuplicateKeyError, rethrowAsStoreError, toStoreError } from '../../src/store/errors.js';

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
    const plain = new Error('disk full');
    expect(toStoreError(plain)).toBe(plain);
    const mapped = toStoreError(sqliteUnique());
    expect(toStoreError(mapped)).toBe(mapped);
  });

  it('rethrowAsStoreError throws the mapped error (for promise chains)', async () => {
    await expect(Promise.reject(pgUnique()).catch(rethrowAsStoreError)).rejects.toBeInstanceOf(
      DuplicateKeyError,
    );
  });
});
