/**
 * Store.ping() on a PostgreSQL session that takes no writes rejects with StoreUnavailableError carrying SQLSTATE 25006
 * (read_only_sql_transaction, what PostgreSQL itself answers a write there), so that what reads it (the "could not
 * start" advice) tells it by its code, as it tells a refused write, and not by the words of its message.
 */
import { describe, expect, it } from 'vitest';
import { startFailureAdvice } from '../../src/config/start-failure.js';
import { StoreUnavailableError } from '../../src/store/index.js';
import { describePostgres } from './harness.js';

/** The codes of an error and its causes. */
function codesOf(err: unknown): unknown[] {
  const codes: unknown[] = [];
  for (let e: unknown = err; e instanceof Error && codes.length < 8; e = e.cause)
    codes.push((e as { code?: unknown }).code);
  return codes;
}

describePostgres('ping() on a session that refuses writes', (h) => {
  it('rejects with SQLSTATE 25006 in its chain, and the start advice names the read-only server', async () => {
    const url = new URL(h.options.url);
    url.searchParams.set('options', '-c default_transaction_read_only=on');
    const readOnly = await h.open({ ...h.options, url: url.toString(), existingOnly: true });
    const err = await readOnly.ping().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(codesOf(err)).toContain('25006');
    expect(startFailureAdvice(err, { database: { url: h.options.url } })).toMatch(
      /names a PostgreSQL that refuses writes: point it at the primary/,
    );
  });
});

describe('the start advice for a store error', () => {
  const database = { url: 'postgres://payments@db.internal:5432/payments' };

  it('is told by SQLSTATE 25006, not by the words "refuses writes" in a message', () => {
    const coded = new StoreUnavailableError('PostgreSQL is in recovery', {
      cause: Object.assign(new Error('PostgreSQL is in recovery'), { code: '25006' }),
    });
    expect(startFailureAdvice(coded, { database })).toMatch(/refuses writes: point it at the primary/);
    // A message that happens to say so, without the code, gets the advice for a database that is away.
    const worded = new StoreUnavailableError('the proxy refuses writes while it reconnects');
    expect(startFailureAdvice(worded, { database })).toMatch(/^Check DATABASE_URL/);
  });
});
