import { expect, it } from 'vitest';
import { DEFAULT_CLAIM_LEASE_MS, DuplicateKeyError } from '../../src/store/index.js';
import { ISO, describeStore, uid } from './harness.js';

const at = (iso: string, plusMs = 0) => new Date(new Date(iso).getTime() + plusMs).toISOString();

describeStore('outbox repository', (h) => {
  it('adds a message and reads it back through a claim, payload and headers parsed', async () => {
    const db = await h.open(h.newDatabase());
    const messageId = uid('msg');
    const added = await db.outbox.add({
      destination: 'stripe_refund_requests',
      messageId,
      payload: { request_id: 'r1', amount: 500, nested: { ok: true } },
      headers: { 'x-attempt': 1 },
    });
    expect(added).toMatchObject({
      destination: 'stripe_refund_requests',
      routingKey: '',
      messageId,
      payload: { request_id: 'r1', amount: 500, nested: { ok: true } },
      headers: { 'x-attempt': 1 },
      attempts: 0,
      sentAt: null,
      lastError: null,
    });
    expect(typeof added.id).toBe('number');
    expect(added.createdAt).toMatch(ISO);
    expect(await db.outbox.pendingCount()).toBe(1);

    const now = new Date();
    const [claimed, ...rest] = await db.outbox.claimBatch(10, now);
    expect(rest).toEqual([]);
    expect(claimed).toMatchObject({ id: added.id, messageId, payload: added.payload });
    expect(claimed!.availableAt).toBe(at(now.toISOString(), DEFAULT_CLAIM_LEASE_MS));
  });

  it('headersOf answers the headers of the rows with the given message ids, sent or not', async () => {
    const db = await h.open(h.newDatabase());
    const sent = await db.outbox.add({
      destination: 'q',
      messageId: 'k#accept',
      payload: 1,
      headers: { a: 'x' },
    });
    await db.outbox.markSent([sent.id]);
    await db.outbox.add({ destination: 'q', messageId: 'k#sweep', payload: 2, headers: { b: 2 } });
    await db.outbox.add({ destination: 'q', messageId: 'k#bare', payload: 3 });
    const found = await db.outbox.headersOf(['k#accept', 'k#sweep', 'k#bare', 'k#none']);
    expect(Object.fromEntries(found)).toEqual({ 'k#accept': { a: 'x' }, 'k#sweep': { b: 2 } });
    expect((await db.outbox.headersOf([])).size).toBe(0);
  });

  it('release makes leased rows claimable now, and leaves sent rows alone', async () => {
    const db = await h.open(h.newDatabase());
    const later = at(new Date().toISOString(), 60_000);
    const a = await db.outbox.add({ destination: 'q', messageId: 'a', payload: 'a', availableAt: later });
    const b = await db.outbox.add({ destination: 'q', messageId: 'b', payload: 'b', availableAt: later });
    const c = await db.outbox.add({ destination: 'q', messageId: 'c', payload: 'c', availableAt: later });
    expect(await db.outbox.markSent([c.id])).toBe(1);
    expect(await db.outbox.claimBatch(10)).toEqual([]);

    expect(await db.outbox.release([a.id, b.id, c.id])).toBe(2);
    expect((await db.outbox.claimBatch(10)).map((m) => m.messageId)).toEqual(['a', 'b']);
    expect(await db.outbox.release([])).toBe(0);
  });

  it('rejects a duplicate message id', async () => {
    const messageId = uid('msg');
    await h.store.outbox.add({ destination: 'q', messageId, payload: 1 });
    await expect(h.store.outbox.add({ destination: 'q', messageId, payload: 2 })).rejects.toBeInstanceOf(
      DuplicateKeyError,
    );
  });

  it('claims oldest first, respects availableAt, and leases claimed rows until the lease ends', async () => {
    const db = await h.open(h.newDatabase());
    const t0 = '2032-01-01T00:00:00.000Z';
    const a = await db.outbox.add({
      destination: 'exchange:stripe.events',
      routingKey: 'refund.updated',
      messageId: 'a',
      payload: 'a',
      availableAt: t0,
    });
    const b = await db.outbox.add({ destination: 'q', messageId: 'b', payload: 'b', availableAt: t0 });
    await db.outbox.add({ destination: 'q', messageId: 'later', payload: 'c', availableAt: at(t0, 60_000) });

    expect(await db.outbox.claimBatch(10, at(t0, -1))).toEqual([]);
    const first = await db.outbox.claimBatch(1, t0, 5_000);
    expect(first.map((m) => m.messageId)).toEqual(['a']);
    expect(first[0]?.routingKey).toBe('refund.updated');
    const second = await db.outbox.claimBatch(10, t0, 5_000);
    expect(second.map((m) => m.messageId)).toEqual(['b']);
    // a and b are leased: nobody gets them again before the lease runs out...
    expect(await db.outbox.claimBatch(10, at(t0, 4_999), 5_000)).toEqual([]);
    // ...and after it, an unacknowledged row comes back (the relay that had it may have died).
    const again = await db.outbox.claimBatch(10, at(t0, 5_000), 5_000);
    expect(again.map((m) => m.id)).toEqual([a.id, b.id]);
    expect(await db.outbox.pendingCount()).toBe(3);
  });

  it('markSent removes rows from claims; markFailed records the error and backs off', async () => {
    const db = await h.open(h.newDatabase());
    const t0 = '2032-02-01T00:00:00.000Z';
    const a = await db.outbox.add({ destination: 'q', messageId: 'a', payload: 1, availableAt: t0 });
    const b = await db.outbox.add({ destination: 'q', messageId: 'b', payload: 2, availableAt: t0 });

    expect(await db.outbox.markSent([a.id], at(t0, 1))).toBe(1);
    expect(await db.outbox.markSent([a.id])).toBe(0);
    expect(await db.outbox.markSent([])).toBe(0);
    expect(await db.outbox.pendingCount()).toBe(1);

    expect(await db.outbox.markFailed(b.id, 'channel closed', at(t0, 10_000))).toBe(true);
    expect(await db.outbox.markFailed(a.id, 'too late', at(t0, 10_000))).toBe(false);
    expect(await db.outbox.claimBatch(10, at(t0, 9_999))).toEqual([]);
    const [retried] = await db.outbox.claimBatch(10, at(t0, 10_000));
    expect(retried).toMatchObject({ id: b.id, attempts: 1, lastError: 'channel closed' });
    expect(await db.outbox.markFailed(b.id, 'x'.repeat(10_000), at(t0, 20_000))).toBe(true);
    expect((await db.outbox.claimBatch(10, at(t0, 20_000)))[0]?.lastError?.length).toBeLessThan(10_000);
  });

  it('purgeSent deletes only rows sent before the cut-off', async () => {
    const db = await h.open(h.newDatabase());
    const ids = [];
    for (const m of ['a', 'b', 'c'])
      ids.push((await db.outbox.add({ destination: 'q', messageId: m, payload: m })).id);
    await db.outbox.markSent([ids[0]!], '2032-03-01T00:00:00Z');
    await db.outbox.markSent([ids[1]!], '2032-03-03T00:00:00Z');
    expect(await db.outbox.purgeSent('2032-03-02T00:00:00Z')).toBe(1);
    expect(await db.outbox.purgeSent('2032-03-02T00:00:00Z')).toBe(0);
    expect(await db.outbox.pendingCount()).toBe(1);
    expect(await db.outbox.markSent([ids[1]!])).toBe(0); // b still there, already sent
  });

  it('purgeSent deletes every row due when they take several batches, and no other', async () => {
    const db = await h.open(h.newDatabase());
    const ids = [];
    for (const m of ['a', 'b', 'c', 'd', 'e', 'f'])
      ids.push((await db.outbox.add({ destination: 'q', messageId: m, payload: m })).id);
    await db.outbox.markSent(ids.slice(0, 5), '2032-03-01T00:00:00Z');
    expect(await db.outbox.purgeSent('2032-03-02T00:00:00Z', 2)).toBe(5);
    expect(await db.outbox.pendingCount()).toBe(1);
    expect((await db.outbox.claimBatch(10, '2040-01-01T00:00:00Z')).map((m) => m.messageId)).toEqual(['f']);
  });

  it('a message added in a rolled-back transaction never becomes visible', async () => {
    const db = await h.open(h.newDatabase());
    const boom = new Error('boom');
    await expect(
      db.transaction(async (tx) => {
        await tx.refunds.insert({
          requestId: 'r1',
          paymentIntentId: 'pi_1',
          amount: 1,
          status: 'queued',
          mode: 'async',
        });
        await tx.outbox.add({ destination: 'q', messageId: 'r1', payload: { r: 1 } });
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await db.outbox.pendingCount()).toBe(0);
    expect(await db.refunds.get('r1')).toBeNull();

    await db.transaction(async (tx) => {
      await tx.refunds.insert({
        requestId: 'r1',
        paymentIntentId: 'pi_1',
        amount: 1,
        status: 'queued',
        mode: 'async',
      });
      await tx.outbox.add({ destination: 'q', messageId: 'r1', payload: { r: 1 } });
    });
    expect(await db.outbox.pendingCount()).toBe(1);
    expect((await db.refunds.get('r1'))?.status).toBe('queued');
  });
});

describeStore('inbox repository', (h) => {
  it('purgeProcessed deletes only events applied before the cut-off, in batches', async () => {
    const db = await h.open(h.newDatabase());
    for (let i = 0; i < 7; i++)
      await db.inbox.insertIfAbsent({ eventId: `evt_${i}`, type: 'refund.updated', payload: { i } });
    for (let i = 0; i < 5; i++) await db.inbox.markProcessed(`evt_${i}`, '2032-03-01T00:00:00Z');
    await db.inbox.markProcessed('evt_5', '2032-03-03T00:00:00Z');
    // evt_6 was never applied: kept, however old.
    expect(await db.inbox.purgeProcessed('2032-03-02T00:00:00Z', 2)).toBe(5);
    expect(await db.inbox.purgeProcessed('2032-03-02T00:00:00Z', 2)).toBe(0);
    expect(await db.inbox.count()).toBe(2);
    expect(await db.inbox.get('evt_5')).not.toBeNull();
    expect(await db.inbox.countUnprocessed()).toBe(1);
  });

  it('stores an event once and reports duplicates', async () => {
    const eventId = uid('evt');
    const event = {
      eventId,
      type: 'charge.refunded',
      objectId: 'ch_1',
      payload: { id: eventId, data: { object: { id: 'ch_1' } } },
    };
    expect(await h.store.inbox.insertIfAbsent(event)).toBe(true);
    expect(await h.store.inbox.insertIfAbsent({ ...event, type: 'changed' })).toBe(false);
    const got = await h.store.inbox.get(eventId);
    expect(got).toMatchObject({
      eventId,
      type: 'charge.refunded',
      objectId: 'ch_1',
      payload: event.payload,
      processedAt: null,
      attempts: 0,
      lastError: null,
    });
    expect(got?.receivedAt).toMatch(ISO);
    expect(got?.availableAt).toBe(got?.receivedAt);
    expect(await h.store.inbox.get(uid('evt'))).toBeNull();
  });

  it('insertIfAbsent inside a transaction does not break it on a duplicate', async () => {
    const eventId = uid('evt');
    await h.store.inbox.insertIfAbsent({ eventId, type: 't', payload: {} });
    const result = await h.store.transaction(async (tx) => {
      const fresh = await tx.inbox.insertIfAbsent({ eventId, type: 't', payload: {} });
      await tx.inbox.markProcessed(eventId);
      return fresh;
    });
    expect(result).toBe(false);
    expect((await h.store.inbox.get(eventId))?.processedAt).toMatch(ISO);
  });

  it('claims unprocessed events oldest first, with a lease, retries failures later and counts', async () => {
    const db = await h.open(h.newDatabase());
    const t0 = '2033-01-01T00:00:00.000Z';
    for (const [i, id] of ['evt_b', 'evt_a', 'evt_c'].entries()) {
      await db.inbox.insertIfAbsent({
        eventId: id,
        type: 'payment_intent.succeeded',
        payload: { i },
        receivedAt: at(t0, i),
      });
    }
    expect(await db.inbox.count()).toBe(3);
    expect(await db.inbox.countUnprocessed()).toBe(3);

    const claimed = await db.inbox.claimUnprocessed(2, at(t0, 10), 1_000);
    expect(claimed.map((e) => e.eventId)).toEqual(['evt_b', 'evt_a']);
    expect((await db.inbox.claimUnprocessed(10, at(t0, 10), 1_000)).map((e) => e.eventId)).toEqual(['evt_c']);
    expect(await db.inbox.claimUnprocessed(10, at(t0, 500), 1_000)).toEqual([]);

    expect(await db.inbox.markProcessed('evt_b', at(t0, 20))).toBe(true);
    expect(await db.inbox.markProcessed('evt_b')).toBe(false);
    expect(await db.inbox.markFailed('evt_a', 'refund not found yet', at(t0, 60_000))).toBe(true);
    expect(await db.inbox.markFailed('evt_b', 'late', at(t0, 60_000))).toBe(false);
    expect(await db.inbox.countUnprocessed()).toBe(2);
    expect(await db.inbox.count()).toBe(3);

    // lease of evt_c ended, evt_a is backed off for a minute
    expect((await db.inbox.claimUnprocessed(10, at(t0, 2_000))).map((e) => e.eventId)).toEqual(['evt_c']);
    const [retry] = await db.inbox.claimUnprocessed(10, at(t0, 60_000));
    expect(retry).toMatchObject({ eventId: 'evt_a', attempts: 1, lastError: 'refund not found yet' });
    expect((await db.inbox.get('evt_b'))?.processedAt).toBe(at(t0, 20));
  });
});
