/**
 * Review of 9c6a3c8 (README: "Every change to a refund, on either store (...), is dated at least a millisecond after
 * the change before it, so the `updated_at` of `GET /refund-status` never goes back (nor stands still) as the refund
 * moves on").
 *
 * One change is not dated: an attempt taken back (the worker stopped while the refund waited for the Stripe rate
 * limiter, RefundService.process -> takeBackAttempt). A queued refund's first attempt moves it `queued` ->
 * `processing` at T; taken back, it is `queued` again, and GET /refund-status (status and updated_at straight from
 * the row) shows `processing` at T, then `queued` at the same T: the status moved, its time stood still, and a client
 * ordering what it saw by `updated_at` cannot tell which came last.
 *
 * Only the take-back that moves the status (an async refund's first attempt: back to `queued`) is in question; one
 * that leaves the refund `processing` changes nothing GET /refund-status shows, and keeping its time is what lets a
 * synchronous retry judge the attempt idle (see beginAttemptFrom).
 */
import { expect, it } from 'vitest';
import { describeStore, uid } from './harness.js';

describeStore('an attempt taken back moves the refund back to queued', (h) => {
  it('is dated after the attempt it took back, as every other change of a refund is', async () => {
    const accepted = await h.store.refunds.insert({
      requestId: uid('req'),
      owner: 'acme',
      paymentIntentId: uid('pi'),
      amount: 500,
      currency: 'usd',
      status: 'queued',
      mode: 'async',
    });
    const begun = (await h.store.refunds.beginAttempt(accepted.requestId))!;
    expect(begun.status).toBe('processing');

    expect(await h.store.refunds.takeBackAttempt(accepted.requestId, begun.attempts)).toBe(true);
    const back = (await h.store.refunds.get(accepted.requestId))!;
    expect(back.status).toBe('queued');
    // What GET /refund-status answers: the refund's status changed, so must the time it last changed.
    expect(Date.parse(back.updatedAt)).toBeGreaterThan(Date.parse(begun.updatedAt));
  });
});
