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

  it('a waiter whose signal is aborted leaves the line without a token; the others keep their turn', async () => {
    const limiter = createRateLimiter(4); // one every 250 ms
    const stop = new AbortController();
    const order: string[] = [];
    const wait = (name: string, signal?: AbortSignal) =>
      limiter.acquire(signal).then(
        () => order.push(name),
        (err: unknown) => order.push(`${name} refused: ${(err as Error).message}`),
      );
    void wait('first');
    void wait('stopping-1', stop.signal);
    void wait('stopping-2', stop.signal);
    void wait('other');
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual(['first']);
    stop.abort(new Error('shutting down'));
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual([
      'first',
      'stopping-1 refused: shutting down',
      'stopping-2 refused: shutting down',
    ]);
    // The next token goes to the waiter after them, when it is due: the two that left took none.
    await vi.advanceTimersByTimeAsync(250);
    expect(order.at(-1)).toBe('other');
    // Already aborted: refused at once, and the token is still there for the next caller.
    await vi.advanceTimersByTimeAsync(250);
    void wait('late', stop.signal);
    void wait('after');
    await vi.advanceTimersByTimeAsync(0);
    expect(order.slice(-2)).toEqual(['late refused: shutting down', 'after']);
  });

  it('rejects nonsense rates', () => {
    expect(() => createRateLimiter(0)).toThrow();
    expect(() => createRateLimiter(-1)).toThrow();
    expect(() => createRateLimiter(Number.NaN)).toThrow();
    expect(() => createRateLimiter(5, { burst: 0 })).toThrow();
  });
});
