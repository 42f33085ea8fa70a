import { describe, expect, it } from 'vitest';
import { fromDbTime, toIso } from '../../src/store/codec.js';

describe('times read back from the database', () => {
  it('returns text this service stored (toIso) exactly as stored', () => {
    const stored = toIso(new Date(Date.UTC(2026, 10, 28, 13, 45, 7, 123)));
    expect(stored).toBe('2026-11-28T13:45:07.123Z');
    expect(fromDbTime(stored)).toBe(stored);
  });

  it('normalises other text SQLite may hold to the same UTC ISO form', () => {
    expect(fromDbTime('2026-01-02 03:04:05')).toBe(new Date('2026-01-02 03:04:05').toISOString());
    expect(fromDbTime('2026-01-02T03:04:05Z')).toBe('2026-01-02T03:04:05.000Z');
    expect(fromDbTime('2026-01-02T04:04:05.5+01:00')).toBe('2026-01-02T03:04:05.500Z');
  });

  it('turns PostgreSQL timestamptz values (Dates) into the same form', () => {
    expect(fromDbTime(new Date(Date.UTC(2026, 0, 2, 3, 4, 5)))).toBe('2026-01-02T03:04:05.000Z');
  });

  it('refuses text that is not a time instead of passing it on', () => {
    expect(() => fromDbTime('not a time')).toThrow(RangeError);
    expect(() => fromDbTime('2026-13-45T99:99:99.999Z')).toThrow(RangeError);
  });
});
