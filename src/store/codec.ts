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

/** What Date#toISOString writes for years 0000-9999 (`2026-11-28T13:45:07.123Z`), fields in range. */
const CANONICAL_ISO =
  /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z$/;

/**
 * SQLite returns the stored text; PostgreSQL (timestamptz) returns a Date. Every time this service
 * stores went through toIso, so SQLite text already in that exact form is returned as it is (parsing
 * and re-printing it was ~2 µs a column, several columns a row); anything else is normalised.
 */
export function fromDbTime(value: string | Date): string {
  if (value instanceof Date) return value.toISOString();
  return CANONICAL_ISO.test(value) ? value : toIso(value);
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
