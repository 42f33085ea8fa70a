/**
 * The stuck-refund sweep (requeueStuck) reads refunds `queued` or `processing`, oldest-updated first, a page at a
 * time, and re-queues every page it finds stale. With many refunds in flight (a RabbitMQ or Stripe outage leaves
 * them all stale at once) both databases read and sorted every one of them for each page, through the status
 * index, which cannot give that order for two statuses: on SQLite, where the read holds the event loop, 0.2-0.4 s
 * a page at 100,000 refunds. Until migration 0009; checked on each database's own query plan after filling the
 * table with refunds in flight.
 */
import { expect, it } from 'vitest';
import { listByStatusQuery } from '../../src/store/refunds-repo.js';
import { describeStore } from './harness.js';
import { compiler, expectNoScanOf, planAfterFilling, refundsInFlight } from './query-plan.js';

const ROWS = 20_000;

describeStore('stuck-refund sweep plan', (h) => {
  it('reads a page of refunds in flight, oldest first, from an index in that order, without sorting them all', async () => {
    const options = h.newDatabase();
    const store = await h.open(options);
    const now = Date.now();
    const plan = await planAfterFilling(
      h.dialect,
      options,
      // Half queued, half processing, all changed after the rows the test adds below.
      refundsInFlight(new Date(now).toISOString(), ROWS),
      // As the sweep asks, and in the other order: the same statement.
      listByStatusQuery(compiler(h.dialect), h.dialect, ['processing', 'queued'], 500).compile(),
    );

    expect(plan).toContain('refunds_in_flight_idx');
    expectNoScanOf(h.dialect, plan, 'refunds');
    if (h.dialect === 'sqlite') expect(plan).not.toContain('TEMP B-TREE');
    else expect(plan).not.toMatch(/"Node Type": ?"(Incremental )?Sort"/);

    // And the page is still the oldest-updated refunds in those statuses (ties by request id), and only those.
    const at = (ms: number) => new Date(now - ms);
    await store.refunds.insert({
      requestId: 'old-b',
      paymentIntentId: 'pi_1',
      amount: 1,
      status: 'queued',
      mode: 'async',
      createdAt: at(3_000),
    });
    await store.refunds.insert({
      requestId: 'old-a',
      paymentIntentId: 'pi_1',
      amount: 1,
      status: 'processing',
      mode: 'async',
      createdAt: at(3_000),
    });
    await store.refunds.insert({
      requestId: 'old-c',
      paymentIntentId: 'pi_1',
      amount: 1,
      status: 'queued',
      mode: 'async',
      createdAt: at(2_000),
    });
    await store.refunds.insert({
      requestId: 'old-done',
      paymentIntentId: 'pi_1',
      amount: 1,
      status: 'succeeded',
      mode: 'async',
      createdAt: at(5_000),
    });
    await store.refunds.insert({
      requestId: 'old-pending',
      paymentIntentId: 'pi_1',
      amount: 1,
      status: 'pending',
      mode: 'async',
      createdAt: at(5_000),
    });
    const page = await store.refunds.listByStatus(['queued', 'processing'], 4);
    expect(page.map((r) => r.requestId)).toEqual([
      'old-a',
      'old-b',
      'old-c',
      expect.stringMatching(/^fill-/),
    ]);
    expect((await store.refunds.listByStatus(['pending'], 10)).map((r) => r.requestId)).toEqual([
      'old-pending',
    ]);
  });
});
