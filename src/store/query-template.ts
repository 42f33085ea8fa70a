/**
 * Hot statements built with Kysely once, then run many times with new parameters.
 *
 * Building and compiling a Kysely query costs more CPU than SQLite takes to run a simple one (an
 * upsert with its CASE expressions was ~8% of a request's CPU). A template runs the builder once per
 * dialect with placeholder values, remembers the SQL and where each placeholder landed in the
 * parameter list, and afterwards only fills in the values. The SQL stays Kysely's, typed against
 * the same `Database`.
 *
 * The builder must take every varying value from `p(name)`: anything else it captures is frozen
 * into the template. Building checks that every declared name was used and nothing else looks like a
 * placeholder; running checks that every name has a value.
 */
import { createHash } from 'node:crypto';
import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';
import type { Database } from './database.js';
import type { Dialect } from './migrations.js';

const MARK = '\u0000kysely-template-param:';

/**
 * PostgreSQL statement names for the templates' SQL. A template's text never changes, so each pooled
 * connection can prepare it once (node-postgres named statements) and PostgreSQL skips parsing and
 * planning on every later run. Only template SQL is named: the set is small and fixed, so the
 * statements a connection keeps prepared stay bounded.
 */
const preparedNames = new Map<string, string>();

/** The prepared-statement name for `sql` when it is a template's PostgreSQL text, else undefined. */
export function preparedStatementName(sql: string): string | undefined {
  return preparedNames.get(sql);
}

type Execute = (query: CompiledQuery) => Promise<QueryResult<unknown>>;

/** Handles whose template queries skip Kysely's executor (see executeTemplatesWith). */
const directExecutors = new WeakMap<Kysely<Database>, Execute>();

/**
 * Templates run on `db` call `execute` instead of `db.executeQuery`. Kysely's executor adds nothing to an
 * already compiled query but a connection round trip through its provider (several promises and closures
 * per query); `execute` must do exactly what `db.executeQuery` would, so `db` must have no plugins.
 */
export function executeTemplatesWith(db: Kysely<Database>, execute: Execute): void {
  directExecutors.set(db, execute);
}

type Slot = { readonly name: string } | { readonly value: unknown };

interface Compiled {
  readonly query: CompiledQuery;
  readonly slots: readonly Slot[];
}

/** `p(name)` stands for the value passed as `params[name]` at run time. */
export type Param<P> = (name: keyof P & string) => never;

/** `{ column: p(column) }` for each column: an insert whose every value is the parameter of the same name. */
export function placeholders<P, C extends keyof P & string>(
  p: Param<P>,
  columns: readonly C[],
): Record<C, never> {
  return Object.fromEntries(columns.map((c) => [c, p(c)])) as Record<C, never>;
}

export interface QueryTemplate<P extends Record<string, unknown>, R> {
  run(db: Kysely<Database>, dialect: Dialect, params: P): Promise<QueryResult<R>>;
  /** First row, or undefined. */
  first(db: Kysely<Database>, dialect: Dialect, params: P): Promise<R | undefined>;
}

export function queryTemplate<P extends Record<string, unknown>, R>(
  label: string,
  names: readonly (keyof P & string)[],
  build: (db: Kysely<Database>, p: Param<P>) => Compilable<R>,
): QueryTemplate<P, R> {
  const byDialect = new Map<Dialect, Compiled>();

  function compile(db: Kysely<Database>): Compiled {
    const p = ((name: string) => `${MARK}${name}`) as unknown as Param<P>;
    const query = build(db, p).compile();
    const used = new Set<string>();
    const slots = query.parameters.map((value): Slot => {
      if (typeof value === 'string' && value.includes(MARK)) {
        const name = value.slice(MARK.length);
        if (!value.startsWith(MARK) || !names.includes(name)) {
          throw new Error(`query template ${label}: placeholder used inside a larger value or undeclared`);
        }
        used.add(name);
        return { name };
      }
      return { value };
    });
    const unused = names.filter((n) => !used.has(n));
    if (unused.length > 0) throw new Error(`query template ${label}: ${unused.join(', ')} never used`);
    return { query, slots };
  }

  function compiled(db: Kysely<Database>, dialect: Dialect): Compiled {
    let c = byDialect.get(dialect);
    if (!c) {
      byDialect.set(dialect, (c = compile(db)));
      if (dialect === 'postgres') {
        const sql = c.query.sql;
        preparedNames.set(sql, `tpl_${createHash('sha256').update(sql).digest('hex').slice(0, 32)}`);
      }
    }
    return c;
  }

  async function run(db: Kysely<Database>, dialect: Dialect, params: P): Promise<QueryResult<R>> {
    const { query, slots } = compiled(db, dialect);
    const parameters = slots.map((slot) => {
      if (!('name' in slot)) return slot.value;
      const value = params[slot.name];
      if (value === undefined) throw new TypeError(`query template ${label}: no value for ${slot.name}`);
      return value;
    });
    const compiledQuery = { ...query, parameters } as CompiledQuery<R>;
    const direct = directExecutors.get(db);
    return direct ? (direct(compiledQuery) as Promise<QueryResult<R>>) : db.executeQuery<R>(compiledQuery);
  }

  return {
    run,
    async first(db, dialect, params) {
      return (await run(db, dialect, params)).rows[0];
    },
  };
}
