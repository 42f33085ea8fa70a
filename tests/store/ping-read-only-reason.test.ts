/**
 * What /readyz says of a real PostgreSQL session that takes no writes: the reason is read from what ping() found and
 * the SQLSTATE it carries, so the same error worded in another language (a PostgreSQL with other lc_messages, whose
 * words reach an error) still gets it. tests/unit/readiness-store-reason.test.ts has the standby's case.
 */
import { expect, it } from 'vitest';
import { REASONS, storeReason } from '../../src/ops/health.js';
import { describePostgres } from './harness.js';

describePostgres('readiness reason for ping() on a session that refuses writes', (h) => {
  it('names default_transaction_read_only, whatever the words of the error', async () => {
    const url = new URL(h.options.url);
    url.searchParams.set('options', '-c default_transaction_read_only=on');
    const readOnly = await h.open({ ...h.options, url: url.toString(), existingOnly: true });
    const err = await readOnly.ping().then(
      () => null,
      (e: unknown) => e,
    );
    expect(storeReason(err)).toBe(REASONS.storeReadOnlySetting);
    // The same finding worded otherwise, the error and each of its causes.
    for (let e: unknown = err; e instanceof Error; e = e.cause) {
      e.message = 'PostgreSQL verweigert Schreibzugriffe: die Sitzung ist schreibgeschützt';
    }
    expect(storeReason(err)).toBe(REASONS.storeReadOnlySetting);
  });
});
