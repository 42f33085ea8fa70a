/**
 * One process under load on PostgreSQL: requests hold every connection of DATABASE_POOL_SIZE, each waiting on a
 * lock. The stuck-refund sweep's read of refunds in flight, housekeeping's purge of expired Idempotency-Keys and
 * its erasure of old customer e-mail addresses ran on that pool: behind the requests they waited out the
 * connection timeout and failed, for as long as the load lasted. They run on the background pool, as the outbox
 * and inbox work does.
 */
import { expect, it } from 'vitest';
import { describePostgres, holdEveryConnection, uid } from './harness.js';

/** Requests' connections, all taken below. */
const POOL_SIZE = 2;

describePostgres('background work while requests hold every pooled connection', (h) => {
  it('the stuck-refund sweep reads refunds in flight, and housekeeping purges keys and forgets e-mails', async () => {
    const store = await h.openSibling({ poolSize: POOL_SIZE, connectTimeoutMs: 1_000 });
    const requestId = uid('inflight');
    await store.refunds.insert({
      requestId,
      paymentIntentId: 'pi_bg',
      amount: 100,
      currency: 'usd',
      status: 'queued',
      mode: 'async',
      createdAt: new Date(Date.now() - 3_600_000),
    });
    const owner = uid('owner');
    // Begun two days ago with a day to live: expired.
    await store.idempotency.begin(owner, 'k1', 'hash', 86_400_000, new Date(Date.now() - 2 * 86_400_000));
    const release = await holdEveryConnection(h, 'api_keys', POOL_SIZE, (i) =>
      store.apiKeys.findActiveByHash(`busy_${i}`),
    );
    let results: PromiseSettledResult<unknown>[];
    try {
      results = await Promise.allSettled([
        store.refunds.listByStatus(['queued', 'processing'], 500),
        store.idempotency.purgeExpired(),
        store.payments.forgetCustomerEmails(new Date(Date.now() - 7 * 86_400_000)),
      ]);
    } finally {
      await release();
    }
    // Each answered while the requests held every connection, none with "no PostgreSQL connection".
    expect(results.map((r) => (r.status === 'fulfilled' ? 'answered' : String(r.reason)))).toEqual([
      'answered',
      'answered',
      'answered',
    ]);
    const [listed, purged] = results.map((r) => (r as PromiseFulfilledResult<unknown>).value);
    expect((listed as { requestId: string }[]).map((r) => r.requestId)).toContain(requestId);
    expect(purged).toBeGreaterThanOrEqual(1);
  });
});
