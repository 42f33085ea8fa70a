export interface CapturedRequest {
  requestId: string;
  method: string;
  path: string;
  /** The matched route, e.g. `/v1/payment_intents/:intent`, or null for unknown URLs. */
  route: string | null;
  /** Query string or form body, parsed to nested objects; null if it could not be parsed. */
  params: unknown;
  idempotencyKey: string | null;
  status: number;
  /** The JSON body sent back, or null if the connection was dropped before answering. */
  response: string | null;
  replayed: boolean;
}

/** The last N API exchanges, for debugging and for checking the wire format against Stripe's schema. */
export class RequestLog {
  private entries: CapturedRequest[] = [];

  constructor(private readonly capacity: number) {}

  add(entry: CapturedRequest): void {
    if (this.capacity <= 0) return;
    this.entries.push(entry);
    if (this.entries.length > this.capacity * 2) this.entries = this.entries.slice(-this.capacity);
  }

  list(): CapturedRequest[] {
    return this.entries.slice(-this.capacity);
  }

  clear(): void {
    this.entries = [];
  }
}
