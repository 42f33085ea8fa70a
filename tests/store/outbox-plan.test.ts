/**
 * The relay claims waiting outbox rows many times a second, while sent rows are kept for a week. The
 * claim must read the rows that wait, not walk every sent row kept (it did, on both databases, until
 * migration 0004): checked on each database's own query plan after filling the table with sent rows. A relay that
 * holds rows long (the broker slow) renews their leases: that finds its rows by id, however many are kept.
 */
import { expect, it } from 'vitest';
import { claimBatchQuery, extendLeasesQuery } from '../../src/store/outbox-repo.js';
import { describeStore } from './harness.js';
import { compiler, expectNoScanOf, planAfterFilling } from './query-plan.js';

const SENT_ROWS = 20_000;
const WAITING = ['w1', 'w2', 'w3'];

describeStore('outbox claim plan', (h) => {
  it('claims the waiting rows through the unsent-rows index, not by walking the sent ones', async () => {
    const options = h.newDatabase();
    const store = await h.open(options);
    const now = new Date();
    const at = now.toISOString();
    const claim = claimBatchQuery(compiler(h.dialect), h.dialect, 200, at, 30_000).compile();

    const plan = await planAfterFilling(
      h.dialect,
      options,
      {
        table: 'outbox',
        columns: 'destination, message_id, payload, created_at, available_at, sent_at',
        select: `'q', 'sent-' || i, '{}', $1, $1, $1`,
        at,
        rows: SENT_ROWS,
      },
      claim,
    );
    for (const id of WAITING) await store.outbox.add({ destination: 'q', messageId: id, payload: id });

    expect(plan).toContain('outbox_unsent_idx');
    expectNoScanOf(h.dialect, plan, 'outbox');

    // And it still claims exactly the waiting rows, oldest first.
    const claimed = await store.outbox.claimBatch(200, new Date(now.getTime() + 1_000));
    expect(claimed.map((m) => m.messageId)).toEqual(WAITING);
  });

  it("renews the held rows' leases by id, and only those whose lease is still the one held", async () => {
    const options = h.newDatabase();
    const store = await h.open(options);
    const now = new Date();
    const at = now.toISOString();
    const lease = new Date(now.getTime() + 1_000).toISOString();
    const until = new Date(now.getTime() + 16_000).toISOString();
    const renew = extendLeasesQuery(
      compiler(h.dialect),
      h.dialect,
      [{ id: 1, availableAt: lease }],
      until,
    ).compile();

    const plan = await planAfterFilling(
      h.dialect,
      options,
      {
        table: 'outbox',
        columns: 'destination, message_id, payload, created_at, available_at, sent_at',
        select: `'q', 'sent-' || i, '{}', $1, $1, $1`,
        at,
        rows: SENT_ROWS,
      },
      renew,
    );
    expectNoScanOf(h.dialect, plan, 'outbox');

    const add = (messageId: string) =>
      store.outbox.add({ destination: 'q', messageId, payload: messageId, availableAt: lease });
    const taken = await add('taken');
    const held = await add('held');
    const sent = await add('sent');
    await store.outbox.markSent([sent.id]);
    // Another relay took the oldest once the lease had run out (a later lease of its own).
    const claimed = await store.outbox.claimBatch(1, new Date(now.getTime() + 2_000), 15_000);
    expect(claimed.map((m) => m.messageId)).toEqual(['taken']);

    const renewed = await store.outbox.extendLeases(
      [taken, held, sent].map((m) => ({ id: m.id, availableAt: m.availableAt })),
      until,
    );
    expect(renewed).toEqual([held.id]);
    // Ten seconds on, every lease the first holder had would have run out; none of the rows is free.
    expect(await store.outbox.claimBatch(10, new Date(now.getTime() + 10_000), 15_000)).toEqual([]);
    const [again] = await store.outbox.claimBatch(10, new Date(now.getTime() + 16_500), 15_000);
    expect(again?.messageId).toBe('held');
  });
});
