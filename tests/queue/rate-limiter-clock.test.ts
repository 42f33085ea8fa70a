/**
 * The worker's Stripe rate limiter must not stall when the wall clock steps backwards (NTP step,
 * VM resumed from a snapshot). It measured elapsed time with Date.now(), so a step back of an hour made
 * (now - refilledAt) hugely negative and the next refund waited an hour for a token.
 */
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { createRateLimiter } from '../../src/queue/index.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

it('a wall-clock step back does not hold the next Stripe call for as long as the step', async () => {
  const limiter = createRateLimiter(10); // one every 100 ms
  let granted = 0;
  void limiter.acquire().then(() => granted++);
  await vi.advanceTimersByTimeAsync(0);
  expect(granted).toBe(1);

  // The wall clock steps back one hour; monotonic time (timers, performance.now) goes on as before.
  vi.setSystemTime(Date.now() - 3_600_000);
  void limiter.acquire().then(() => granted++);
  await vi.advanceTimersByTimeAsync(1_000);
  expect(granted).toBe(2);
});

it('a wall-clock step forward does not grant a burst beyond the configured one', async () => {
  const limiter = createRateLimiter(10);
  let granted = 0;
  void limiter.acquire().then(() => granted++);
  await vi.advanceTimersByTimeAsync(0);
  vi.setSystemTime(Date.now() + 3_600_000);
  for (let i = 0; i < 5; i++) void limiter.acquire().then(() => granted++);
  await vi.advanceTimersByTimeAsync(0);
  expect(granted).toBeLessThanOrEqual(2);
});
