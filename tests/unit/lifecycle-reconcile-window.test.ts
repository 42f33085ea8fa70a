import { describe, expect, it } from 'vitest';
import { parseDuration } from '../../src/reconcile/index.js';

describe('reconcile --since', () => {
  it('reads s, m, h and d', () => {
    expect([parseDuration('90s'), parseDuration('30m'), parseDuration('24h'), parseDuration(' 7d ')]).toEqual(
      [90_000, 1_800_000, 86_400_000, 604_800_000],
    );
  });

  // A window no date can start (before 1970, or past what a Date holds) failed later as "could not finish" (exit 3,
  // which says Stripe or the database did not answer) instead of as a bad argument (exit 2).
  it('refuses a window reaching back before 1970 as a bad argument', () => {
    for (const text of ['99999999999d', '9999999999999999999999s', '30000d']) {
      expect(() => parseDuration(text), text).toThrow(/reaches back before 1970/);
    }
    expect(parseDuration('3650d')).toBe(3650 * 86_400_000);
  });
});
