import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createRateLimiter } from '../../src/queue/index.js';

/** Starts `n` acquires and returns a live view of how many have been granted. */
function acquireMany(
  limiter: { acquire(): Promise<void> },
  n: number,
): { granted: () => number; order: number[] } {
  const order: number[] = [];
  for (let i = 0; i < n; i++) void limiter.acquire().then(() => order.push(i));
  return { granted: () => order.length, order };
}

describe('createRateLimiter', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('null means unlimited', async () => {
    const limiter = createRateLimiter(null);
    const calls = acquireMany(limiter, 1_000);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.granted()).toBe(1_000);
  });

  it('spaces requests evenly at the configured rate, in arrival order', async () => {
    const limiter = createRateLimiter(4); // one every 250 ms
    const calls = acquireMany(limiter, 5);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.granted()).toBe(1);
    await vi.advanceTimersByTimeAsync(249);
    expect(calls.granted()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.granted()).toBe(2);
    await vi.advanceTimersByTimeAsync(750);
    expect(calls.granted()).toBe(5);
    expect(calls.order).toEqual([0, 1, 2, 3, 4]);
  });

  it('never grants more than the ceiling in any one-second window', async () => {
    const limiter = createRateLimiter(10);
    const calls = acquireMany(limiter, 100);
    await vi.advanceTimersByTimeAsync(999);
    expect(calls.granted()).toBeLessThanOrEqual(10);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls.granted()).toBeLessThanOrEqual(20);
    expect(calls.granted()).toBeGreaterThanOrEqual(19);
  });

  it('lets a burst through after an idle period when asked to', async () => {
    const limiter = createRateLimiter(2, { burst: 3 });
    const calls = acquireMany(limiter, 4);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls.granted()).toBe(3);
    await vi.advanceTimersByTimeAsync(500);
    expect(calls.granted()).toBe(4);
  });

  it('rejects nonsense rates', () => {
    expect(() => createRateLimiter(0)).toThrow();
    expect(() => createRateLimiter(-1)).toThrow();
    expect(() => createRateLimiter(Number.NaN)).toThrow();
    expect(() => createRateLimiter(5, { burst: 0 })).toThrow();
  });
});
