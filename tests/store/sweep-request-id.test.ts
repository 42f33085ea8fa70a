/**
 * The stuck-refund sweep's copy of a refund's request message carries the x-request-id of the HTTP request that
 * asked for the refund, so the worker's lines still name it. It was taken from the refund's first message only,
 * which the outbox purges a week after sending: a refund stuck longer than that (workers or Stripe down, a refund
 * left for the sweep) was queued again without it. It is now read from the refund itself (refunds.http_request_id),
 * and from the first message for refunds that have none (accepted by an earlier version).
 */
import { expect, it } from 'vitest';
import { REQUEST_ID_HEADER } from '../../src/queue/topology.js';
import { describeStore, uid } from './harness.js';
import { succeededIntent, sweepStuck } from './sweep-support.js';

describeStore('stuck-refund sweep: the x-request-id of its copy', (h) => {
  it('comes from the refund when its first message is gone from the outbox', async () => {
    const store = await h.open(h.newDatabase());
    const pi = await succeededIntent(store);
    const requestId = uid('stuck');
    // Accepted weeks ago: its first message was published and purged since, so the outbox has none for it.
    await store.refunds.insert({
      requestId,
      owner: 'acme',
      paymentIntentId: pi,
      amount: 300,
      status: 'processing',
      mode: 'async',
      httpRequestId: 'req-weeks-ago',
      createdAt: new Date(Date.now() - 21 * 86_400_000),
    });
    await new Promise((r) => setTimeout(r, 5));
    expect(await sweepStuck(store, 0)).toBe(1);
    const [copy] = await store.outbox.claimBatch(10);
    expect(copy?.payload).toMatchObject({ request_key: requestId });
    expect(copy?.headers?.[REQUEST_ID_HEADER]).toBe('req-weeks-ago');
  });
});
