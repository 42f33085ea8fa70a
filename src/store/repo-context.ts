import type { Kysely } from 'kysely';
import type { Database } from './database.js';
import type { Dialect } from './migrations.js';

/** What every repository is built from: a Kysely handle that may be a transaction. */
export interface RepoContext {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  readonly inTransaction: boolean;
  /**
   * How this store runs a short transaction of its own, when not Kysely's `db.transaction()` (SQLite: a
   * unit of the group commit, see ImmediateSqliteDialect.runUnit). Only on a context outside a transaction.
   */
  readonly transaction?: <T>(fn: (db: Kysely<Database>) => Promise<T>) => Promise<T>;
}

/** Runs `fn` in the caller's transaction, or in a short one of its own. */
export async function atomically<T>(ctx: RepoContext, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  if (ctx.inTransaction) return fn(ctx.db);
  if (ctx.transaction) return ctx.transaction(fn);
  return ctx.db.transaction().execute(fn);
}

export function requireTransaction(ctx: RepoContext, method: string): void {
  if (!ctx.inTransaction) {
    throw new Error(
      `${method} only makes sense inside store.transaction(); the lock ends with the statement`,
    );
  }
}
