/**
 * RefundsRepo.lowerAmount: what a refund of what is left reserves can be lowered to what Stripe has left, only
 * downwards, only from the amount the caller read, and only while no Stripe refund is tied to the row and it is
 * still in flight, so the ledger never reserves more than before and a refund Stripe made keeps its amount.
 */
import { expect, it } from 'vitest';
import type { NewRefund } from '../../src/store/index.js';
import { describeStore, uid } from './harness.js';

const refund = (over: Partial<NewRefund> = {}): NewRefund => ({
  requestId: uid('req'),
  owner: 'acme',
  paymentIntentId: uid('pi'),
  amount: 1000,
  currency: 'usd',
  status: 'processing',
  attempts: 1,
  mode: 'async',
  metadata: { order: 'o-1' },
  ...over,
});

describeStore('refunds lowerAmount', (h) => {
  it('lowers the amount of a refund in flight and writes its metadata, the rest unchanged', async () => {
    const r = await h.store.refunds.insert(refund());
    const marked = { order: 'o-1', payment_service_lowered_from: '1000' };
    expect(await h.store.refunds.lowerAmount(r.requestId, 1000, 400, marked)).toBe(true);
    const after = await h.store.refunds.get(r.requestId);
    expect(after).toMatchObject({ amount: 400, metadata: marked, status: 'processing', attempts: 1 });
    expect(await h.store.refunds.sumCommitted(r.paymentIntentId)).toBe(400);
  });

  it('changes nothing from another amount than the one read, upwards, or to nothing', async () => {
    const r = await h.store.refunds.insert(refund());
    expect(await h.store.refunds.lowerAmount(r.requestId, 900, 400, {})).toBe(false);
    expect(await h.store.refunds.lowerAmount(r.requestId, 1000, 1000, {})).toBe(false);
    expect(await h.store.refunds.lowerAmount(r.requestId, 1000, 1200, {})).toBe(false);
    expect(await h.store.refunds.lowerAmount(r.requestId, 1000, 0, {})).toBe(false);
    expect(await h.store.refunds.get(r.requestId)).toMatchObject({
      amount: 1000,
      metadata: { order: 'o-1' },
    });
  });

  it('changes nothing once a Stripe refund is tied to it, or once it is final or not yet begun', async () => {
    const tied = await h.store.refunds.insert(refund({ stripeRefundId: uid('re') }));
    const failed = await h.store.refunds.insert(refund({ status: 'failed' }));
    const queued = await h.store.refunds.insert(refund({ status: 'queued', attempts: 0 }));
    for (const r of [tied, failed, queued]) {
      expect(await h.store.refunds.lowerAmount(r.requestId, 1000, 400, {})).toBe(false);
      expect((await h.store.refunds.get(r.requestId))?.amount).toBe(1000);
    }
  });
});
