/**
 * A rolling update runs this version beside a later one, whose migration may add a column to a table this one
 * reads. On PostgreSQL this version's statements run as prepared statements on each pooled connection, and one
 * that read `*` failed on every later run with `cached plan must not change result type` (0A000) once the column
 * was added: every request of the older processes failed until their connections were replaced. Statements now
 * name their columns, so a column added under them changes nothing they answer.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { expect, it } from 'vitest';
import type { Store } from '../../src/store/index.js';
import { PG_URL, describeStore, uid } from './harness.js';

const TABLES = ['payments', 'refunds', 'outbox', 'webhook_events', 'api_keys', 'idempotency_keys'];

/** Every kind of read and write a request or the worker makes, each checked against what was written. */
async function exercise(store: Store): Promise<void> {
  const pi = uid('pi');
  const payment = await store.payments.insert({
    id: pi,
    kind: 'payment_intent',
    owner: 'shop',
    amount: 5_000,
    currency: 'usd',
    status: 'succeeded',
  });
  expect(await store.payments.get(pi)).toEqual(payment);
  expect(await store.payments.getForOwner(pi, 'shop')).toEqual(payment);
  expect(await store.payments.getForOwnerWithCommitted(pi, 'shop')).toEqual({ payment, committed: 0 });
  const upserted = await store.payments.upsert({ ...payment, status: 'succeeded', amountRefunded: 0 });
  expect(upserted).toMatchObject({ id: pi, status: 'succeeded' });

  const requestId = uid('rq');
  const message = {
    destination: 'refunds',
    messageId: `${requestId}#accept`,
    payload: { request_key: requestId },
  };
  const fields = {
    requestId,
    owner: 'shop',
    paymentIntentId: pi,
    status: 'queued' as const,
    mode: 'async' as const,
  };
  const accepted = store.refunds.acceptAnnounced
    ? await store.refunds.acceptAnnounced({ ...fields, amount: 1_000 }, message)
    : await store.refunds.insertAnnounced({ ...fields, amount: 1_000 }, message);
  expect(accepted?.refund).toMatchObject({ requestId, amount: 1_000, status: 'queued' });
  expect(await store.refunds.get(requestId)).toEqual(accepted?.refund);
  const locked = await store.transaction((tx) => tx.refunds.lockForAccept(uid('rq'), pi));
  expect(locked).toMatchObject({ existing: null, payment: { id: pi }, committed: 1_000 });
  const attempt = await store.refunds.beginAttempt(requestId);
  expect(attempt).toMatchObject({ requestId, status: 'processing', attempts: 1 });
  const settled = await store.refunds.settleAttemptAnnounced(
    attempt!,
    { status: 'succeeded', stripeRefundId: uid('re'), currency: 'usd', failureReason: null },
    (refund) => ({
      destination: 'responses',
      messageId: `${refund.requestId}#${refund.status}`,
      payload: { request_id: refund.requestId, status: refund.status },
    }),
  );
  expect(settled?.refund).toMatchObject({ requestId, status: 'succeeded' });
  expect(await store.refunds.get(requestId)).toMatchObject({ status: 'succeeded' });
  expect((await store.refunds.listForPaymentIntent(pi)).map((r) => r.requestId)).toEqual([requestId]);

  const claimed = await store.outbox.claimBatch(1_000);
  expect(claimed.map((m) => m.messageId)).toContain(message.messageId);
  await store.outbox.markSent(claimed.map((m) => m.id));

  const eventId = uid('evt');
  expect(
    await store.inbox.insertIfAbsent({ eventId, type: 'refund.updated', payload: { id: eventId } }),
  ).toBe(true);
  expect(await store.inbox.get(eventId)).toMatchObject({ eventId, type: 'refund.updated' });
  expect((await store.inbox.claimUnprocessed(1_000)).map((e) => e.eventId)).toContain(eventId);

  const hash = uid('hash');
  const key = await store.apiKeys.insert({
    id: uid('key'),
    owner: 'shop',
    name: 'n',
    kind: 'secret',
    prefix: 'psk_x',
    hash,
  });
  expect(await store.apiKeys.findActiveByHash(hash)).toEqual(key);
  expect((await store.apiKeys.list('shop')).map((k) => k.id)).toContain(key.id);

  const idem = uid('idem');
  const claim = new Date();
  expect(await store.idempotency.begin('shop', idem, 'h', 60_000, claim)).toMatchObject({ kind: 'started' });
  await store.idempotency.complete('shop', idem, 200, '{"ok":true}', claim);
  expect(await store.idempotency.begin('shop', idem, 'h', 60_000, new Date())).toMatchObject({
    kind: 'replay',
    status: 200,
  });
}

describeStore('columns a later version adds', (h) => {
  it("leave this version's reads and writes working on connections that ran them before", async () => {
    // One connection, so the statements run after the migration are the ones prepared before it.
    const options = { ...h.newDatabase(), poolSize: 1 };
    const store = await h.open(options);
    await exercise(store);

    if (h.dialect === 'postgres') {
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      try {
        for (const table of TABLES)
          await admin.query(`alter table "${options.schema}"."${table}" add column later_version_note text`);
      } finally {
        await admin.end();
      }
    } else {
      const file = new Database(options.url.slice('sqlite:'.length));
      try {
        for (const table of TABLES) file.exec(`alter table "${table}" add column later_version_note text`);
      } finally {
        file.close();
      }
    }

    await exercise(store);
  });
});
