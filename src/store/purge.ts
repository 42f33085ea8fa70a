import { toIso } from './codec.js';
import type { TimeInput } from './codec.js';

/**
 * PostgreSQL: about how many rows one statement of a housekeeping purge deletes (OutboxRepo.purgeSent,
 * IdempotencyRepo.purgeExpired). Every statement of the service must end within DATABASE_TIMEOUT_MS (10 s by
 * default; statement_timeout on the server too): a purge in one statement failed on a backlog too large to delete
 * in that time (millions of rows, after housekeeping did not run for a while), every hour again, and the table grew
 * for good. Large enough that a backlog takes few statements: 50,000 rows take about 0.1 s.
 */
export const PG_PURGE_BATCH = 50_000;

/**
 * Deletes what is due in slices of a time column, oldest first, each slice about `size` rows: `boundAfter(from)`
 * answers the time `size` due rows on from `from` (found through the column's index; none when fewer are left), and
 * `deleteRange(from, until)` deletes the due rows with from <= time < until (either end open when absent),
 * answering how many. A slice reads its own rows only, where a batch picked by LIMIT walked again the index
 * entries of the rows the batches before it deleted, and a delete by a list of ids read the whole table. Each
 * slice ends at least 1 ms after it starts, so many rows sharing one time cannot stop the purge (they go in one
 * slice). Answers how many rows were deleted.
 */
export async function purgeInSlices(
  boundAfter: (from: string | undefined) => Promise<TimeInput | undefined>,
  deleteRange: (from: string | undefined, until: string | undefined) => Promise<number>,
): Promise<number> {
  let total = 0;
  let from: string | undefined;
  for (;;) {
    const bound = await boundAfter(from);
    let until: string | undefined;
    if (bound !== undefined) {
      const ms = new Date(bound).getTime();
      until = toIso(new Date(from === undefined ? ms : Math.max(ms, Date.parse(from) + 1)));
    }
    total += await deleteRange(from, until);
    if (until === undefined) return total;
    from = until;
  }
}
