import { sql, type RawBuilder } from 'kysely';
import type { Dialect } from './migrations.js';

/**
 * The `updated_at` to write on a change of a row: `at` (this process's clock, as toIso writes it), but at least a
 * millisecond after the row's own `updated_at` (`column`), and with `dbClock` (PostgreSQL) no earlier than
 * PostgreSQL's clock either. In SQL, so it holds against the row as the statement finds it.
 *
 * By a clock alone, a change after one dated ahead of it (written by an instance whose clock is ahead, or before
 * this clock stepped back) went back in time, and two changes within one millisecond got the same time: GET
 * /refund-status showed a refund changing before it last changed, and a refund back at a status (pending ->
 * requires_action -> pending) announced it under the id of its first announcement (`<request>#<status>#<updated_at>`,
 * unique in the outbox), which was refused. Strictly after, not merely no earlier, for that id.
 *
 * SQLite keeps times as toIso's text (`2026-11-28T13:45:07.123Z`), which sorts as it reads: strftime's `%f` writes
 * seconds with milliseconds, so the row's time plus 1 ms comes back in the same form, and `max` compares the two as
 * text. A stored time SQLite cannot read (none this service writes) leaves `at`.
 */
export function afterLastChange(
  dialect: Dialect,
  at: unknown,
  opts: { dbClock?: boolean; column?: string } = {},
): RawBuilder<string> {
  const last = sql.ref(opts.column ?? 'updated_at');
  if (dialect === 'postgres') {
    return opts.dbClock
      ? sql<string>`greatest(cast(${at} as timestamptz), now(), ${last} + interval '1 millisecond')`
      : sql<string>`greatest(cast(${at} as timestamptz), ${last} + interval '1 millisecond')`;
  }
  return sql<string>`max(${at}, coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', ${last}, '+0.001 seconds'), ${at}))`;
}
