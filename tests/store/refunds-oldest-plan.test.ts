/**
 * Every /metrics scrape asks, per status a refund can be stuck in, when the refund longest in it last changed
 * (oldestUpdateByStatus). As one `min(updated_at) ... group by status` over the status index, both databases read
 * every index entry of every refund in flight (on SQLite, on the event loop: milliseconds to tens of milliseconds
 * per scrape at 100,000 refunds in flight). One `min()` per status is one seek each into refunds_status_idx
 * (status, updated_at). Checked on each database's own query plan after filling the table with refunds in flight.
 */
import { expect, it } from 'vitest';
import { OPEN_REFUND_STATUSES } from '../../src/store/refund-status.js';
import { oldestUpdateByStatusQuery } from '../../src/store/refunds-repo.js';
import { describeStore } from './harness.js';
import { compiler, planAfterFilling, refundsInFlight } from './query-plan.js';

const ROWS = 20_000;

describeStore('oldest refund per status plan', (h) => {
  it('finds the oldest refund of each status with one index seek per status, not by reading them all', async () => {
    const options = h.newDatabase();
    const store = await h.open(options);
    const now = Date.now();
    const plan = await planAfterFilling(
      h.dialect,
      options,
      refundsInFlight(new Date(now).toISOString(), ROWS),
      oldestUpdateByStatusQuery(compiler(h.dialect), OPEN_REFUND_STATUSES).compile(),
    );

    if (h.dialect === 'sqlite') {
      const lines = plan.split('\n');
      // One seek per status: SQLite's min() optimisation reads the first index entry of `status = ?`.
      const seeks = lines.filter((l) =>
        /SEARCH refunds USING COVERING INDEX refunds_status_idx \(status=\?\)/.test(l),
      );
      expect({ seeks: seeks.length, plan }).toMatchObject({ seeks: OPEN_REFUND_STATUSES.length });
      expect(plan).not.toContain('TEMP B-TREE');
      expect(plan).not.toMatch(/status>\?|status<\?|SCAN refunds/);
    } else {
      // No scan of the table and no grouping: one index scan per status, on that status alone; for the statuses the
      // table is full of, stopped at the first entry (a Limit: PostgreSQL's min() optimisation).
      expect(plan).not.toMatch(/"Node Type": ?"(Seq Scan|Bitmap Heap Scan)"|"Group Key"/);
      const perStatus = plan.match(
        /"Index Name": ?"refunds_status_idx"[^}]*"Index Cond": ?"\(+status = '[a-z_]+'/g,
      );
      expect(perStatus?.length).toBe(OPEN_REFUND_STATUSES.length);
      expect(plan.match(/"Node Type": ?"Limit"/g)?.length).toBeGreaterThanOrEqual(2);
    }

    // And the answer is still the oldest change per status, with statuses no refund is in left out.
    const at = (ms: number) => new Date(now - ms);
    await store.refunds.insert({
      requestId: 'old-queued',
      paymentIntentId: 'pi_1',
      amount: 1,
      status: 'queued',
      mode: 'async',
      createdAt: at(3_000),
    });
    await store.refunds.insert({
      requestId: 'old-done',
      paymentIntentId: 'pi_1',
      amount: 1,
      status: 'succeeded',
      mode: 'async',
      createdAt: at(9_000),
    });
    const oldest = await store.refunds.oldestUpdateByStatus(OPEN_REFUND_STATUSES);
    expect(oldest).toEqual({ queued: at(3_000).toISOString(), processing: new Date(now).toISOString() });
  });
});
