/**
 * MAX_CONCURRENT_REQUESTS_PER_OWNER: each owner's (tenant's) share of the MAX_CONCURRENT_REQUESTS places
 * (tests/integration/owner-concurrency-share.test.ts shows what it does). Off unless set.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { problemsOf } from './config-support.js';

describe('MAX_CONCURRENT_REQUESTS_PER_OWNER', () => {
  const perOwner = (env: Record<string, string>) => loadConfig(env).http.maxConcurrentRequestsPerOwner;

  it('is off (0) unless set: a service with one owner keeps every place for it', () => {
    expect(perOwner({})).toBe(0);
    expect(perOwner({ MAX_CONCURRENT_REQUESTS_PER_OWNER: '' })).toBe(0);
    expect(perOwner({ MAX_CONCURRENT_REQUESTS_PER_OWNER: '200' })).toBe(200);
    expect(perOwner({ MAX_CONCURRENT_REQUESTS: '0', MAX_CONCURRENT_REQUESTS_PER_OWNER: '50' })).toBe(50);
  });

  it('refuses a share that lets one owner hold every place, and a value that is not a count', () => {
    expect(problemsOf({ MAX_CONCURRENT_REQUESTS: '100', MAX_CONCURRENT_REQUESTS_PER_OWNER: '100' })).toEqual([
      "MAX_CONCURRENT_REQUESTS_PER_OWNER: must be below MAX_CONCURRENT_REQUESTS (100), so that one owner's requests cannot hold every place; 0 = no share per owner",
    ]);
    expect(problemsOf({ MAX_CONCURRENT_REQUESTS_PER_OWNER: 'some' })).toEqual([
      'MAX_CONCURRENT_REQUESTS_PER_OWNER: must be a whole number from 0 to 100000',
    ]);
    // A cap refused on its own is not compared with.
    expect(problemsOf({ MAX_CONCURRENT_REQUESTS: 'x', MAX_CONCURRENT_REQUESTS_PER_OWNER: '5000' })).toEqual([
      'MAX_CONCURRENT_REQUESTS: must be a whole number from 0 to 100000',
    ]);
  });
});
