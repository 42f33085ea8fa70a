/**
 * Token bucket that keeps the refund worker under a Stripe request ceiling across all of its
 * concurrent handlers. Waiters are served in arrival order, so a burst cannot starve early callers.
 * No installed package does this (p-limit bounds concurrency, not rate), hence the small one here.
 */
export interface RateLimiter {
  /**
   * Resolves when the caller may make one request. Once `signal` is aborted, a caller still waiting leaves the
   * line without a token and the promise rejects with the signal's reason (at once if it is aborted already).
   */
  acquire(signal?: AbortSignal): Promise<void>;
}

export interface RateLimiterOptions {
  /**
   * Requests allowed back to back after an idle period. Defaults to 1, which spaces requests
   * evenly: a ceiling of N per second is then never exceeded in any one-second window.
   */
  burst?: number;
}

const unlimited: RateLimiter = { acquire: () => Promise.resolve() };

export function createRateLimiter(perSecond: number | null, opts: RateLimiterOptions = {}): RateLimiter {
  if (perSecond === null) return unlimited;
  if (!Number.isFinite(perSecond) || perSecond <= 0)
    throw new TypeError('perSecond must be a positive number or null');
  const burst = opts.burst ?? 1;
  if (!Number.isFinite(burst) || burst < 1) throw new TypeError('burst must be >= 1');

  const msPerToken = 1_000 / perSecond;
  let tokens = burst;
  // Monotonic time: a wall-clock step back (NTP, a resumed VM) would otherwise hold every call for as long.
  let refilledAt = performance.now();
  const waiters: (() => void)[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;

  function refill(): void {
    const now = performance.now();
    tokens = Math.min(burst, tokens + (now - refilledAt) / msPerToken);
    refilledAt = now;
  }

  function drain(): void {
    refill();
    while (waiters.length > 0 && tokens >= 1) {
      tokens -= 1;
      waiters.shift()?.();
    }
    if (waiters.length > 0 && timer === null) {
      timer = setTimeout(
        () => {
          timer = null;
          drain();
        },
        Math.ceil((1 - tokens) * msPerToken),
      );
    }
  }

  return {
    acquire(signal?: AbortSignal): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        if (signal?.aborted) {
          reject(signal.reason as Error);
          return;
        }
        const onAbort = () => {
          const at = waiters.indexOf(granted);
          if (at === -1) return;
          waiters.splice(at, 1);
          reject(signal!.reason as Error);
        };
        function granted() {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        }
        signal?.addEventListener('abort', onAbort, { once: true });
        waiters.push(granted);
        drain();
      });
    },
  };
}
