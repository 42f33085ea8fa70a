import { describe, expect, it } from 'vitest';
import { DuplicateKeyError, withErrorMapping } from '../../src/store/errors.js';

const sqliteUnique = () =>
  Object.assign(new Error('UNIQUE constraint failed: refunds.request_id'), {
    code: 'SQLITE_CONSTRAINT_UNIQUE',
  });

describe('withErrorMapping', () => {
  const repo = withErrorMapping({
    label: 'kept',
    async ok(a: number, b: number) {
      return a + b;
    },
    async rejectsUnique(): Promise<never> {
      throw sqliteUnique();
    },
    throwsUnique(): Promise<never> {
      throw sqliteUnique();
    },
    async rejectsOther(): Promise<never> {
      throw new Error('disk full');
    },
    plain(): number {
      return 7;
    },
  });

  it('passes arguments and results through, and keeps non-function fields', async () => {
    expect(await repo.ok(2, 3)).toBe(5);
    expect(repo.label).toBe('kept');
    expect(await repo.plain()).toBe(7);
  });

  it('turns a unique violation into DuplicateKeyError, whether rejected or thrown synchronously', async () => {
    for (const call of [() => repo.rejectsUnique(), () => repo.throwsUnique()]) {
      const p = call();
      expect(p).toBeInstanceOf(Promise);
      const err = await p.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DuplicateKeyError);
      expect(err).toMatchObject({ table: 'refunds', columns: ['request_id'] });
    }
  });

  it('leaves other failures as they are', async () => {
    await expect(repo.rejectsOther()).rejects.toThrow('disk full');
  });
});
