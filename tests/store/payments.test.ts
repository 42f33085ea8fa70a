import { expect, it } from 'vitest';
import { DuplicateKeyError } from '../../src/store/index.js';
import type { NewPayment } from '../../src/store/index.js';
import { ISO, describeStore, uid } from './harness.js';

const intent = (over: Partial<NewPayment> = {}): NewPayment => ({
  id: uid('pi'),
  kind: 'payment_intent',
  owner: 'acme',
  amount: 2_000,
  currency: 'usd',
  status: 'requires_payment_method',
  ...over,
});

describeStore('payments repository', (h) => {
  it('inserts and reads back a payment with numbers, parsed metadata and ISO times', async () => {
    const p = intent({ metadata: { order: '42', note: 'ünïcode ✓' }, customerEmail: 'a@example.com' });
    const inserted = await h.store.payments.insert(p);
    const got = await h.store.payments.get(p.id);
    expect(got).toEqual(inserted);
    expect(got).toMatchObject({
      id: p.id,
      kind: 'payment_intent',
      owner: 'acme',
      paymentIntentId: null,
      amount: 2_000,
      currency: 'usd',
      status: 'requires_payment_method',
      amountRefunded: 0,
      metadata: { order: '42', note: 'ünïcode ✓' },
      customerEmail: 'a@example.com',
    });
    expect(got?.createdAt).toMatch(ISO);
    expect(got?.updatedAt).toBe(got?.createdAt);
    expect(await h.store.payments.get('pi_missing')).toBeNull();
  });

  it('keeps large minor-unit amounts as exact JS numbers', async () => {
    const p = intent({ amount: 999_999_999_999, currency: 'idr', amountRefunded: 123_456_789_012 });
    await h.store.payments.insert(p);
    const got = await h.store.payments.get(p.id);
    expect(got?.amount).toBe(999_999_999_999);
    expect(got?.amountRefunded).toBe(123_456_789_012);
    expect(typeof got?.amount).toBe('number');
  });

  it('rejects a second insert of the same id with DuplicateKeyError', async () => {
    const p = intent();
    await h.store.payments.insert(p);
    const error = await h.store.payments.insert(p).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DuplicateKeyError);
    expect((error as DuplicateKeyError).columns).toEqual(['id']);
  });

  it('inside a transaction too: the duplicate is DuplicateKeyError and the transaction writes nothing', async () => {
    const p = intent();
    await h.store.payments.insert(p);
    const other = intent();
    const error = await h.store
      .transaction(async (tx) => {
        await tx.payments.insert(other);
        await tx.payments.insert(p);
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DuplicateKeyError);
    expect((error as DuplicateKeyError).table).toBe('payments');
    expect(await h.store.payments.get(other.id)).toBeNull();
  });

  it('getForOwner hides other owners’ payments', async () => {
    const p = intent({ owner: 'shop-a' });
    await h.store.payments.insert(p);
    expect((await h.store.payments.getForOwner(p.id, 'shop-a'))?.id).toBe(p.id);
    expect(await h.store.payments.getForOwner(p.id, 'shop-b')).toBeNull();
  });

  it('getForOwnerWithCommitted reads the row with what its refunds hold, and hides other owners’ rows', async () => {
    const p = intent({ owner: 'shop-a', amount: 50_000 });
    await h.store.payments.insert(p);
    expect(await h.store.payments.getForOwnerWithCommitted(p.id, 'shop-a')).toEqual({
      payment: await h.store.payments.get(p.id),
      committed: 0,
    });
    const statuses = ['queued', 'processing', 'pending', 'succeeded', 'failed', 'canceled'] as const;
    for (const [i, status] of statuses.entries()) {
      await h.store.refunds.insert({
        requestId: uid('req'),
        owner: 'shop-a',
        paymentIntentId: p.id,
        amount: 10 ** i,
        status,
        mode: 'async',
      });
    }
    await h.store.refunds.insert({
      requestId: uid('req'),
      owner: 'shop-a',
      paymentIntentId: uid('pi'),
      amount: 7,
      status: 'succeeded',
      mode: 'sync',
    });
    const read = await h.store.payments.getForOwnerWithCommitted(p.id, 'shop-a');
    // failed and canceled refunds hold nothing; another payment's refund is not counted
    expect(read?.committed).toBe(1_111);
    expect(read?.committed).toBe(await h.store.refunds.sumCommitted(p.id));
    expect(read?.payment).toMatchObject({ id: p.id, owner: 'shop-a', amount: 50_000 });
    expect(await h.store.payments.getForOwnerWithCommitted(p.id, 'shop-b')).toBeNull();
    expect(await h.store.payments.getForOwnerWithCommitted(uid('pi'), 'shop-a')).toBeNull();
  });

  it('findByPaymentIntent prefers the intent row, else finds the session that led to it', async () => {
    const piId = uid('pi');
    const session = intent({
      id: uid('cs'),
      kind: 'checkout_session',
      paymentIntentId: piId,
      status: 'complete',
    });
    await h.store.payments.insert(session);
    expect((await h.store.payments.findByPaymentIntent(piId))?.id).toBe(session.id);

    await h.store.payments.insert(intent({ id: piId, status: 'succeeded' }));
    expect((await h.store.payments.findByPaymentIntent(piId))?.id).toBe(piId);
    expect(await h.store.payments.findByPaymentIntent(uid('pi'))).toBeNull();
  });

  it('update patches only the given fields and bumps updatedAt', async () => {
    const p = intent({
      id: uid('cs'),
      kind: 'checkout_session',
      metadata: { a: '1' },
      createdAt: '2024-01-01T00:00:00Z',
    });
    await h.store.payments.insert(p);
    const piId = uid('pi');
    const updated = await h.store.payments.update(p.id, { status: 'complete', paymentIntentId: piId });
    expect(updated).toMatchObject({
      status: 'complete',
      paymentIntentId: piId,
      amount: 2_000,
      metadata: { a: '1' },
    });
    expect(updated?.createdAt).toBe('2024-01-01T00:00:00.000Z');
    expect(updated!.updatedAt > updated!.createdAt).toBe(true);
    expect(await h.store.payments.get(p.id)).toEqual(updated);
    expect(await h.store.payments.update(uid('cs'), { status: 'x' })).toBeNull();
  });

  it('upsert inserts, then refreshes Stripe fields while keeping our owner and metadata', async () => {
    const id = uid('pi');
    const first = await h.store.payments.upsert(intent({ id, owner: 'acme', metadata: { order: '7' } }));
    expect(first).toMatchObject({ owner: 'acme', status: 'requires_payment_method', amountRefunded: 0 });

    const second = await h.store.payments.upsert(
      intent({ id, owner: '', metadata: {}, status: 'succeeded', amount: 2_500, amountRefunded: 500 }),
    );
    expect(second).toMatchObject({
      owner: 'acme',
      metadata: { order: '7' },
      status: 'succeeded',
      amount: 2_500,
      amountRefunded: 500,
    });

    // Without amountRefunded the stored figure is kept.
    const third = await h.store.payments.upsert(intent({ id, status: 'succeeded', amount: 2_500 }));
    expect(third.amountRefunded).toBe(500);
  });

  it('upsert with finalStatuses never moves a final row to another status, even with concurrent older views', async () => {
    const final = ['succeeded', 'canceled'] as const;
    const id = uid('pi');
    await h.store.payments.upsert(intent({ id, status: 'succeeded' }), { finalStatuses: final });
    // An older view (sent before the payment succeeded) arrives late, many times at once.
    const stale = await Promise.all(
      Array.from({ length: 10 }, () =>
        h.store.payments.upsert(intent({ id, status: 'requires_payment_method', amount: 1 }), {
          finalStatuses: final,
        }),
      ),
    );
    for (const row of stale) expect(row).toMatchObject({ id, status: 'succeeded', amount: 2_000 });
    expect(await h.store.payments.get(id)).toMatchObject({ status: 'succeeded', amount: 2_000 });
    // The same final status still refreshes Stripe's other fields; a non-final row moves freely.
    expect(
      await h.store.payments.upsert(intent({ id, status: 'succeeded', amount: 2_100 }), {
        finalStatuses: final,
      }),
    ).toMatchObject({ status: 'succeeded', amount: 2_100 });
    const open = uid('pi');
    await h.store.payments.upsert(intent({ id: open, status: 'requires_payment_method' }), {
      finalStatuses: final,
    });
    expect(
      await h.store.payments.upsert(intent({ id: open, status: 'processing' }), { finalStatuses: final }),
    ).toMatchObject({ status: 'processing' });
  });

  it('upsert fills in owner and metadata of a row first learnt from a webhook', async () => {
    const id = uid('cs');
    await h.store.payments.upsert(intent({ id, kind: 'checkout_session', owner: '', status: 'open' }));
    const filled = await h.store.payments.upsert(
      intent({
        id,
        kind: 'checkout_session',
        owner: 'shop',
        metadata: { cart: '9' },
        status: 'open',
        customerEmail: 'c@d.e',
      }),
    );
    expect(filled).toMatchObject({ owner: 'shop', metadata: { cart: '9' }, customerEmail: 'c@d.e' });
    const again = await h.store.payments.upsert(
      intent({ id, kind: 'checkout_session', owner: '', status: 'complete' }),
    );
    expect(again).toMatchObject({ owner: 'shop', customerEmail: 'c@d.e', status: 'complete' });
  });

  it('listCreatedSince pages through rows in (createdAt, id) order without gaps or repeats', async () => {
    const db = await h.open(h.newDatabase());
    const t0 = '2030-05-01T10:00:00.000Z';
    const t1 = '2030-05-01T10:00:01.000Z';
    const ids = ['pi_a', 'pi_b', 'pi_c', 'pi_d', 'pi_e'];
    // Two rows share t0 so the page boundary falls inside one timestamp.
    await db.payments.insert(intent({ id: 'pi_old', createdAt: '2030-04-30T00:00:00Z' }));
    for (const [i, id] of ids.entries()) await db.payments.insert(intent({ id, createdAt: i < 3 ? t0 : t1 }));

    const seen: string[] = [];
    let page = await db.payments.listCreatedSince(t0, 2);
    while (page.length > 0) {
      seen.push(...page.map((p) => p.id));
      const last = page[page.length - 1]!;
      page = await db.payments.listCreatedSince(last.createdAt, 2, last.id);
    }
    expect(seen).toEqual(ids);
  });

  it('lockForUpdate reads the row inside a transaction and refuses to run outside one', async () => {
    const p = intent();
    await h.store.payments.insert(p);
    const locked = await h.store.transaction((tx) => tx.payments.lockForUpdate(p.id));
    expect(locked?.id).toBe(p.id);
    expect(await h.store.transaction((tx) => tx.payments.lockForUpdate(uid('pi')))).toBeNull();
    await expect(h.store.payments.lockForUpdate(p.id)).rejects.toThrow(/transaction/);
  });
});
