/**
 * Why /readyz says the store is down when the database refuses writes: a standby in recovery, or
 * default_transaction_read_only. The reason was read from the error's message, so a message in another language (a
 * PostgreSQL with lc_messages other than English, ping()'s wording changed) read as "cannot be reached". It is told
 * by the SQLSTATE ping()'s errors carry (25006, as PostgreSQL's own refusal) and what ping() found, whatever the
 * message says. tests/integration/readyz-postgres.test.ts checks the same against a real read-only PostgreSQL.
 */
import { describe, expect, it } from 'vitest';
import { REASONS, storeReason } from '../../src/ops/health.js';
import { StoreUnavailableError, toStoreError } from '../../src/store/errors.js';
import type { ReadOnlyBecause } from '../../src/store/store.js';

/** ping()'s finding as store.ts makes it (the refusal's SQLSTATE and what made the database read-only), reworded. */
function pingRefusal(message: string, readOnlyBecause: ReadOnlyBecause): StoreUnavailableError {
  return new StoreUnavailableError(message, {
    cause: Object.assign(new Error(message), { code: '25006', readOnlyBecause }),
  });
}

describe('readiness: why the store is down', () => {
  it('tells a standby in recovery by what ping() found, not by its wording', () => {
    expect(
      storeReason(
        pingRefusal('PostgreSQL verweigert Schreibzugriffe: Server im Wiederherstellungsmodus', 'recovery'),
      ),
    ).toBe(REASONS.storeStandby);
  });

  it('tells default_transaction_read_only by what ping() found, not by its wording', () => {
    expect(
      storeReason(
        pingRefusal(
          'PostgreSQL refuse les écritures : la session est en lecture seule',
          'transaction_read_only',
        ),
      ),
    ).toBe(REASONS.storeReadOnlySetting);
  });

  it("says read-only for PostgreSQL's own refusal of a write (25006), in whatever language it comes", () => {
    const refused = Object.assign(new Error('kann INSERT nicht in einer Read-only-Transaktion ausführen'), {
      code: '25006',
      severity: 'FEHLER',
    });
    expect(storeReason(toStoreError(refused))).toBe(REASONS.storeReadOnly);
    expect(storeReason(new StoreUnavailableError('Schreibzugriff verweigert', { cause: refused }))).toBe(
      REASONS.storeReadOnly,
    );
  });

  it('says unreachable for anything else the store is unavailable for, whatever its message says', () => {
    // A server starting up (57P03) says "in recovery" in its own words: not a standby refusing writes.
    const starting = Object.assign(new Error('the database system is in recovery mode'), { code: '57P03' });
    expect(
      storeReason(new StoreUnavailableError('the database system is in recovery mode', { cause: starting })),
    ).toBe(REASONS.storeUnavailable);
    expect(storeReason(toStoreError(starting))).toBe(REASONS.storeUnavailable);
    expect(storeReason(new StoreUnavailableError('no PostgreSQL connection'))).toBe(REASONS.storeUnavailable);
    expect(storeReason(new Error('refuses writes'))).toBe(REASONS.storeFailed);
  });
});
