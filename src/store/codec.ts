/** Time input accepted by the repositories; always stored and returned as a UTC ISO-8601 string. */
export type TimeInput = Date | string;

export function toIso(value: TimeInput): string {
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) throw new RangeError(`invalid time: ${String(value)}`);
  return date.toISOString();
}

export function nowIso(): string {
  return new Date().toISOString();
}

export function addMs(value: TimeInput, ms: number): string {
  return new Date(new Date(toIso(value)).getTime() + ms).toISOString();
}

/** SQLite returns the stored ISO text; PostgreSQL (timestamptz) returns a Date. */
export function fromDbTime(value: string | Date): string {
  return value instanceof Date ? value.toISOString() : toIso(value);
}

export function fromDbTimeOrNull(value: string | Date | null): string | null {
  return value === null ? null : fromDbTime(value);
}

/** Aggregates come back as bigint/numeric strings from pg; amounts stay far below 2^53. */
export function toNumber(value: number | string | bigint | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : Number(value);
}

export function toJson(value: unknown): string {
  return JSON.stringify(value ?? null);
}

export function fromJson<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}
