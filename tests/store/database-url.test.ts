import { describe, expect, it } from 'vitest';
import { DEFAULT_DATABASE_URL, parseDatabaseUrl, redactDatabaseUrl } from '../../src/store/index.js';

describe('parseDatabaseUrl', () => {
  it('defaults to the embedded SQLite file', () => {
    expect(DEFAULT_DATABASE_URL).toBe('sqlite:./data/payments.db');
    expect(parseDatabaseUrl(undefined)).toEqual({ dialect: 'sqlite', path: './data/payments.db' });
    expect(parseDatabaseUrl('  ')).toEqual({ dialect: 'sqlite', path: './data/payments.db' });
  });

  it('reads sqlite paths, absolute paths and in-memory databases', () => {
    expect(parseDatabaseUrl('sqlite:/var/lib/payments.db')).toEqual({
      dialect: 'sqlite',
      path: '/var/lib/payments.db',
    });
    expect(parseDatabaseUrl('sqlite:///var/lib/payments.db')).toEqual({
      dialect: 'sqlite',
      path: '/var/lib/payments.db',
    });
    expect(parseDatabaseUrl('sqlite:data/x.db')).toEqual({ dialect: 'sqlite', path: 'data/x.db' });
    expect(parseDatabaseUrl('sqlite::memory:')).toEqual({ dialect: 'sqlite', path: ':memory:' });
  });

  it('reads postgres:// and postgresql:// URLs unchanged', () => {
    for (const url of ['postgres://u:p@db:5432/pay', 'postgresql://db/pay?sslmode=require']) {
      expect(parseDatabaseUrl(url)).toEqual({ dialect: 'postgres', connectionString: url });
    }
  });

  it('rejects anything else without echoing a password', () => {
    expect(() => parseDatabaseUrl('sqlite:')).toThrow(/path/);
    expect(() => parseDatabaseUrl('mysql://root:hunter2@db/pay')).toThrow(/sqlite:, postgres/);
    expect(() => parseDatabaseUrl('mysql://root:hunter2@db/pay')).not.toThrow(/hunter2/);
  });

  it('redacts passwords for logs', () => {
    expect(redactDatabaseUrl('postgres://app:s3cret@db:5432/pay')).toBe('postgres://app:***@db:5432/pay');
    expect(redactDatabaseUrl('postgres://db/pay?password=s3cret')).not.toContain('s3cret');
    expect(redactDatabaseUrl('postgres://db/pay')).toBe('postgres://db/pay');
  });
});
