/**
 * Runs at most `concurrency` async tasks at once, the rest in arrival order. A burst of webhook
 * deliveries then cannot turn into a burst of Stripe reads and ledger writes of the same size.
 */
export interface TaskLimiter {
  run<T>(task: () => Promise<T>): Promise<T>;
  /** Resolves once nothing is running or waiting, including tasks queued while it waited. */
  idle(): Promise<void>;
  readonly active: number;
  readonly waiting: number;
}

export function createTaskLimiter(concurrency: number): TaskLimiter {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new TypeError('concurrency must be an integer >= 1');
  }
  let active = 0;
  const queue: (() => void)[] = [];
  let idleWaiters: (() => void)[] = [];

  function release(): void {
    active--;
    const next = queue.shift();
    if (next) {
      active++;
      next();
    } else if (active === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  return {
    run<T>(task: () => Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const start = () => {
          Promise.resolve().then(task).then(resolve, reject).finally(release);
        };
        if (active < concurrency) {
          active++;
          start();
        } else {
          queue.push(start);
        }
      });
    },
    idle() {
      if (active === 0 && queue.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    get active() {
      return active;
    },
    get waiting() {
      return queue.length;
    },
  };
}
