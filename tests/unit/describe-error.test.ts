/**
 * describeError names an error and its causes for the "could not start" line and for main's handler of uncaught
 * exceptions. An error that is its own cause (or a longer cycle of causes) kept it looping for ever: repeated
 * messages are not added, so its bound on the parts was never reached, and the crashing process spun at 100% CPU
 * instead of exiting, deaf to SIGTERM.
 */
import { describe, expect, it } from 'vitest';
import { describeError } from '../../src/config/start-failure.js';

describe('describeError', () => {
  it('names an error that is its own cause once, and returns', () => {
    const err = new Error('the ledger went away');
    (err as { cause?: unknown }).cause = err;
    expect(describeError(err)).toBe('the ledger went away');
  });

  it('follows a cycle of two causes once round', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(describeError(a)).toBe('a (b)');
  });

  it('still names up to four different messages of a chain', () => {
    const chain = ['one', 'two', 'three', 'four', 'five'].reduceRight<Error | undefined>(
      (cause, m) => new Error(m, cause ? { cause } : undefined),
      undefined,
    );
    expect(describeError(chain)).toBe('one (two: three: four)');
  });
});
