/**
 * PaymentsRepo.upsertIfUnchanged: the upsert a payment intent's event writes with (applyIntent), done only if the
 * row is still as the event's last look at it found it (same status written at the same time, or no row), so a
 * write whose Stripe read is older than another write made since does not replace it.
 */
import { expect, it } from 'vitest';
import type { NewPayment } from '../../src/store/index.js';
import { describeStore, uid } from './harness.js';

const FINAL = ['succeeded', 'canceled'] as const;

const intent = (over: Partial<NewPayment> = {}): NewPayment => ({
  id: uid('pi'),
  kind: 'payment_intent',
  owner: 'acme',
  amount: 2_000,
  currency: 'usd',
  status: 'requires_payment_method',
  ...over,
});

describeStore('payments upsertIfUnchanged', (h) => {
  it('inserts when no row was seen and there is none; writes nothing when one was inserted since', async () => {
    const id = uid('pi');
    const inserted = await h.store.payments.upsertIfUnchanged(
      intent({ id, status: 'requires_action' }),
      null,
    );
    expect(inserted).toMatchObject({ id, status: 'requires_action', owner: 'acme' });
    expect(await h.store.payments.get(id)).toEqual(inserted);

    const late = await h.store.payments.upsertIfUnchanged(
      intent({ id, status: 'requires_payment_method', amount: 1 }),
      null,
      { finalStatuses: FINAL },
    );
    expect(late).toBeNull();
    expect(await h.store.payments.get(id)).toEqual(inserted);
  });

  it('writes over the row it saw, and nothing over a row written since', async () => {
    const id = uid('pi');
    await h.store.payments.insert(
      intent({ id, status: 'requires_action', createdAt: '2024-01-01T00:00:00.000Z' }),
    );
    const seen = (await h.store.payments.get(id))!;

    const written = await h.store.payments.upsertIfUnchanged(
      intent({ id, owner: '', status: 'requires_payment_method', amount: 2_100 }),
      seen,
      { finalStatuses: FINAL },
    );
    expect(written).toMatchObject({ id, owner: 'acme', status: 'requires_payment_method', amount: 2_100 });
    expect(written!.updatedAt > seen.updatedAt).toBe(true);

    // A second writer that saw the same row as the first comes too late: the row is the first's.
    const stale = await h.store.payments.upsertIfUnchanged(intent({ id, status: 'requires_action' }), seen, {
      finalStatuses: FINAL,
    });
    expect(stale).toBeNull();
    expect(await h.store.payments.get(id)).toEqual(written);
  });

  it('a row written since with the same status (a later time) is not the one seen', async () => {
    const id = uid('pi');
    await h.store.payments.insert(
      intent({ id, status: 'processing', createdAt: '2024-01-01T00:00:00.000Z' }),
    );
    const seen = (await h.store.payments.get(id))!;
    const since = await h.store.payments.upsert(intent({ id, status: 'processing', amount: 2_200 }));
    expect(since.updatedAt > seen.updatedAt).toBe(true);

    expect(
      await h.store.payments.upsertIfUnchanged(intent({ id, status: 'requires_payment_method' }), seen),
    ).toBeNull();
    expect(await h.store.payments.get(id)).toEqual(since);
  });

  it('keeps the final-status guard: a final row seen is not moved to another status', async () => {
    const id = uid('pi');
    await h.store.payments.insert(intent({ id, status: 'succeeded' }));
    const seen = (await h.store.payments.get(id))!;
    expect(
      await h.store.payments.upsertIfUnchanged(intent({ id, status: 'requires_action', amount: 1 }), seen, {
        finalStatuses: FINAL,
      }),
    ).toBeNull();
    expect(await h.store.payments.get(id)).toEqual(seen);
    // The same final status still refreshes Stripe's other fields.
    expect(
      await h.store.payments.upsertIfUnchanged(intent({ id, status: 'succeeded', amount: 2_300 }), seen, {
        finalStatuses: FINAL,
      }),
    ).toMatchObject({ status: 'succeeded', amount: 2_300 });
  });
});
