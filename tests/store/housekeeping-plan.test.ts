/**
 * Housekeeping runs hourly (and at every start) against tables that keep weeks of rows: webhook events 30 days
 * after they were applied, payments for good. Its statements must find the few rows due through an index, not
 * read every row kept: on SQLite such a read holds the event loop (0.5 s at 1,000,000 events, every hour, until
 * migration 0007; a week of payments, 0.1 s at 500,000 a month, until 0008). Checked on each database's own
 * query plan after filling the tables with rows that are not due.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { expect, it } from 'vitest';
import { purgeProcessedBatchQuery, purgeProcessedSliceQuery } from '../../src/store/inbox-repo.js';
import { forgetCustomerEmailsQuery } from '../../src/store/payments-repo.js';
import { PG_URL, describeStore } from './harness.js';
import { compiler, expectNoScanOf, planAfterFilling } from './query-plan.js';

const ROWS = 20_000;
const DAY = 86_400_000;

describeStore('housekeeping plans', (h) => {
  it('finds the webhook events applied 30 days ago through an index, not by reading every event kept', async () => {
    const options = h.newDatabase();
    const store = await h.open(options);
    const now = new Date();
    const cutoff = new Date(now.getTime() - 30 * DAY).toISOString();
    const plan = await planAfterFilling(
      h.dialect,
      options,
      {
        table: 'webhook_events',
        columns: 'event_id, type, payload, received_at, processed_at, attempts, available_at',
        select: `'evt_' || i, 'charge.refunded', '{}', $1, $1, 1, $1`,
        at: now.toISOString(),
        rows: ROWS,
      },
      purgeProcessedBatchQuery(compiler(h.dialect), cutoff, 1_000).compile(),
    );

    expect(plan).toContain('webhook_events_applied_idx');
    expectNoScanOf(h.dialect, plan, 'webhook_events');

    // And it still deletes exactly the events applied before the cutoff, never one not applied yet.
    const old = new Date(now.getTime() - 31 * DAY);
    for (const id of ['evt_old_1', 'evt_old_2', 'evt_waiting']) {
      await store.inbox.insertIfAbsent({
        eventId: id,
        type: 'charge.refunded',
        payload: {},
        receivedAt: old,
      });
    }
    await store.inbox.markProcessed('evt_old_1', old);
    await store.inbox.markProcessed('evt_old_2', old);
    expect(await store.inbox.purgeProcessed(new Date(cutoff), 1)).toBe(2);
    expect(await store.inbox.get('evt_old_1')).toBeNull();
    expect(await store.inbox.get('evt_waiting')).toMatchObject({ processedAt: null });
    expect(await store.inbox.count()).toBe(ROWS + 1);
  });

  if (h.dialect === 'postgres')
    it('purges applied webhook events in slices that each read one range of the applied index (PostgreSQL)', async () => {
      // Batches picked by LIMIT (a semi-join on the ids) walked again the index entries of every event the batches
      // before them had deleted: 1,001 statements for 1,000,000 events due. A slice reads its own events only.
      const options = h.newDatabase();
      const store = await h.open(options);
      const now = Date.now();
      const cutoff = new Date(now - 30 * DAY).toISOString();
      const from = new Date(now - 31 * DAY - 20_000).toISOString();
      const until = new Date(now - 31 * DAY - 10_000).toISOString();
      const plan = await planAfterFilling(
        h.dialect,
        options,
        {
          table: 'webhook_events',
          columns: 'event_id, type, payload, received_at, processed_at, attempts, available_at',
          // Applied over the 20 s before 31 days ago, one event a millisecond.
          select: `'evt_' || i, 'charge.refunded', '{}', $1, $1::timestamptz - i * interval '1 ms', 1, $1`,
          at: new Date(now - 31 * DAY).toISOString(),
          rows: ROWS,
        },
        purgeProcessedSliceQuery(compiler(h.dialect), cutoff, from, until).compile(),
      );
      expect(plan).toMatch(/"Index Name": ?"webhook_events_applied_idx"/);
      // Both ends of the slice bound the index range read, not a filter over what it reads.
      expect(plan).toMatch(/"Index Cond": ?"[^"]*processed_at >= [^"]*"/);
      expectNoScanOf(h.dialect, plan, 'webhook_events');
      expect(plan).not.toMatch(/"Node Type": ?"(Limit|Nested Loop|Hash Join|Merge Join)"/);

      // And the purge, in slices of 7 (many events sharing one time among them), deletes exactly the events applied
      // before the cutoff, never one applied since or not applied yet.
      for (const id of ['evt_same_1', 'evt_same_2', 'evt_same_3', 'evt_recent', 'evt_waiting']) {
        await store.inbox.insertIfAbsent({
          eventId: id,
          type: 'charge.refunded',
          payload: {},
          receivedAt: new Date(now - 40 * DAY),
        });
      }
      for (const id of ['evt_same_1', 'evt_same_2', 'evt_same_3'])
        await store.inbox.markProcessed(id, new Date(now - 35 * DAY));
      await store.inbox.markProcessed('evt_recent', new Date(now - 29 * DAY));
      expect(await store.inbox.purgeProcessed(new Date(cutoff), 7)).toBe(ROWS + 3);
      expect(await store.inbox.count()).toBe(2);
      expect(await store.inbox.get('evt_recent')).toMatchObject({ eventId: 'evt_recent' });
      expect(await store.inbox.get('evt_waiting')).toMatchObject({ processedAt: null });
      expect(await store.inbox.purgeProcessed(new Date(cutoff), 7)).toBe(0);
    }, 60_000);

  it('finds the e-mail addresses to forget through an index, not by reading a week of payments', async () => {
    const options = h.newDatabase();
    const store = await h.open(options);
    const now = new Date();
    const since = new Date(now.getTime() - 7 * DAY).toISOString();
    const plan = await planAfterFilling(
      h.dialect,
      options,
      {
        table: 'payments',
        columns: 'id, kind, amount, currency, status, created_at, updated_at',
        select: `'pi_' || i, 'payment_intent', 100, 'usd', 'succeeded', $1, $1`,
        at: now.toISOString(),
        rows: ROWS,
      },
      forgetCustomerEmailsQuery(compiler(h.dialect), since).compile(),
    );

    expect(plan).toContain('payments_customer_email_idx');
    expectNoScanOf(h.dialect, plan, 'payments');
    // A payment index walked over the week (payments_created_idx) reads every payment of it.
    expect(plan).not.toContain('payments_created_idx');

    // And it still clears an address a version before 0006 wrote (as such a process would, beside this one).
    const client = h.dialect === 'postgres' ? new pg.Client({ connectionString: PG_URL }) : undefined;
    const write = `update payments set customer_email = 'kim.old.2291@example.com' where id = 'pi_7'`;
    if (client) {
      await client.connect();
      await client.query(`set search_path to "${options.schema!}"`);
      await client.query(write);
      await client.end();
    } else {
      const db = new Database(options.url.slice('sqlite:'.length));
      db.prepare(write).run();
      db.close();
    }
    expect((await store.payments.get('pi_7'))?.customerEmail).toBe('kim.old.2291@example.com');
    expect(await store.payments.forgetCustomerEmails(new Date(since))).toBe(1);
    expect((await store.payments.get('pi_7'))?.customerEmail).toBeNull();
  });
});
