/**
 * MAX_CONCURRENT_PUBLISHABLE_REQUESTS: how many of the MAX_CONCURRENT_REQUESTS places requests with a publishable
 * key may hold (tests/integration/publishable-cap.test.ts shows what it does). Unset it is half the cap, and it must
 * leave secret keys room: a share as large as the cap would let a key anyone can read hold every place again.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { problemsOf } from './config-support.js';

const share = (env: Record<string, string>) => loadConfig(env).http.maxConcurrentPublishableRequests;

describe('MAX_CONCURRENT_PUBLISHABLE_REQUESTS', () => {
  it('is half of MAX_CONCURRENT_REQUESTS unless set', () => {
    expect(share({})).toBe(500);
    expect(share({ MAX_CONCURRENT_REQUESTS: '4' })).toBe(2);
    expect(share({ MAX_CONCURRENT_REQUESTS: '7' })).toBe(3);
    // No cap at all: no share either, unless one is set.
    expect(share({ MAX_CONCURRENT_REQUESTS: '0' })).toBe(0);
    expect(share({ MAX_CONCURRENT_REQUESTS: '0', MAX_CONCURRENT_PUBLISHABLE_REQUESTS: '50' })).toBe(50);
  });

  it('takes a share below the cap, or 0 for none of their own', () => {
    expect(share({ MAX_CONCURRENT_REQUESTS: '100', MAX_CONCURRENT_PUBLISHABLE_REQUESTS: '99' })).toBe(99);
    expect(share({ MAX_CONCURRENT_REQUESTS: '100', MAX_CONCURRENT_PUBLISHABLE_REQUESTS: '10' })).toBe(10);
    expect(share({ MAX_CONCURRENT_PUBLISHABLE_REQUESTS: '0' })).toBe(0);
    expect(share({ MAX_CONCURRENT_PUBLISHABLE_REQUESTS: ' ' })).toBe(500);
  });

  it('refuses a share that leaves secret keys no place, and a value that is not a count', () => {
    expect(
      problemsOf({ MAX_CONCURRENT_REQUESTS: '100', MAX_CONCURRENT_PUBLISHABLE_REQUESTS: '100' }),
    ).toEqual([
      'MAX_CONCURRENT_PUBLISHABLE_REQUESTS: must be below MAX_CONCURRENT_REQUESTS (100), so that requests with a secret key always find a place; 0 = no separate limit',
    ]);
    expect(problemsOf({ MAX_CONCURRENT_PUBLISHABLE_REQUESTS: '1500' })).toHaveLength(1);
    expect(problemsOf({ MAX_CONCURRENT_PUBLISHABLE_REQUESTS: 'half' })).toEqual([
      'MAX_CONCURRENT_PUBLISHABLE_REQUESTS: must be a whole number from 0 to 100000',
    ]);
    expect(problemsOf({ MAX_CONCURRENT_PUBLISHABLE_REQUESTS: '-1' })).toEqual([
      'MAX_CONCURRENT_PUBLISHABLE_REQUESTS: must be a whole number from 0 to 100000',
    ]);
    // A cap refused on its own is not compared with (its default would make up a problem).
    expect(problemsOf({ MAX_CONCURRENT_REQUESTS: 'x', MAX_CONCURRENT_PUBLISHABLE_REQUESTS: '2000' })).toEqual(
      ['MAX_CONCURRENT_REQUESTS: must be a whole number from 0 to 100000'],
    );
  });
});
