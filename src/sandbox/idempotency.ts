export interface IdempotencyEntry {
  method: string;
  path: string;
  /** Canonical form of the request parameters, compared on reuse of the key. */
  fingerprint: string;
  requestId: string;
  expiresAt: number;
  state: 'in_flight' | 'done';
  status: number;
  body: string;
}

export interface IdempotencyOptions {
  ttlMs: number;
  maxEntries: number;
  /** Upper bound on the bytes of stored response bodies. */
  maxBytes: number;
}

/**
 * Stored results of POSTs that carried an `Idempotency-Key`, scoped by API key. A Map keeps
 * insertion order, which (with one TTL for all) is also expiry order, so eviction is from the front.
 */
export class IdempotencyStore {
  private readonly entries = new Map<string, IdempotencyEntry>();
  private bytes = 0;

  constructor(private readonly options: IdempotencyOptions) {}

  static scope(apiKey: string, idempotencyKey: string): string {
    return `${apiKey}\u0000${idempotencyKey}`;
  }

  lookup(scope: string, now = Date.now()): IdempotencyEntry | undefined {
    const entry = this.entries.get(scope);
    if (entry && entry.expiresAt <= now) {
      this.remove(scope, entry);
      return undefined;
    }
    return entry;
  }

  reserve(
    scope: string,
    request: Pick<IdempotencyEntry, 'method' | 'path' | 'fingerprint' | 'requestId'>,
    now = Date.now(),
  ): IdempotencyEntry {
    this.evict(now);
    const entry: IdempotencyEntry = {
      ...request,
      expiresAt: now + this.options.ttlMs,
      state: 'in_flight',
      status: 0,
      body: '',
    };
    this.entries.set(scope, entry);
    return entry;
  }

  complete(scope: string, entry: IdempotencyEntry, status: number, body: string): void {
    entry.state = 'done';
    entry.status = status;
    entry.body = body;
    if (this.entries.get(scope) === entry) this.bytes += body.length;
  }

  /** Forget a reservation whose request never produced a result worth replaying. */
  release(scope: string, entry: IdempotencyEntry): void {
    if (this.entries.get(scope) === entry) this.remove(scope, entry);
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  private remove(scope: string, entry: IdempotencyEntry): void {
    this.entries.delete(scope);
    this.bytes -= entry.body.length;
  }

  private evict(now: number): void {
    for (const [scope, entry] of this.entries) {
      const over = this.entries.size >= this.options.maxEntries || this.bytes > this.options.maxBytes;
      if (!over && entry.expiresAt > now) break;
      this.remove(scope, entry);
    }
  }
}

/** Key order must not matter when comparing parameters of a reused key. */
export function fingerprint(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(fingerprint).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${fingerprint((value as Record<string, unknown>)[k])}`).join(',')}}`;
}
