import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const POOL_SIZE = 4096;

export interface IdFactory {
  /** `prefix_` followed by `length` random alphanumerics, like Stripe's ids. */
  id(prefix: string, length?: number): string;
  random(length: number): string;
}

/**
 * Ids come from a pre-filled random pool: generating thousands per second with one
 * `randomBytes` call each would dominate the per-request cost.
 */
export function createIdFactory(): IdFactory {
  const pool = Buffer.allocUnsafe(POOL_SIZE);
  let offset = POOL_SIZE;

  function random(length: number): string {
    let out = '';
    for (let i = 0; i < length; i++) {
      if (offset >= POOL_SIZE) {
        randomFillSync(pool);
        offset = 0;
      }
      out += ALPHABET[(pool[offset++] ?? 0) % ALPHABET.length];
    }
    return out;
  }

  return {
    random,
    id: (prefix, length = 24) => `${prefix}_${random(length)}`,
  };
}
