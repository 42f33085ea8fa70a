/**
 * One process under load on PostgreSQL: requests hold every connection of DATABASE_POOL_SIZE, each waiting on a
 * lock. The stuck-refund sweep's read of refunds in flight, housekeeping's purge of expired Idempotency-Keys and
 * its erasure of old customer e-mail addresses ran on that pool: behind the requests they waited out the
 * connection timeout and failed, for as long as the load lasted. They run on the background pool, as the outbox
 * and inbox work does.
 */
import pg from 'pg';
import { expect, it } from 'vitest';
import type { Store } from '../../src/store/index.js';
import { describePostgres, PG_URL, uid, type StoreHarness } from './harness.js';

/** Requests' connections, all taken below. */
const POOL_SIZE = 2;

async function until(check: () => Promise<boolean>, timeoutMs = 8_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/**
 * Takes every pooled connection of `store` for requests: an admin session locks the api_keys table (which none of
 * the work under test touches), and POOL_SIZE key look-ups each hold a connection while they wait.
 */
async function holdEveryConnection(h: StoreHarness, store: Store): Promise<() => Promise<void>> {
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  const table = `"${h.options.schema}".api_keys`;
  await admin.query('begin');
  await admin.query(`lock table ${table} in access exclusive mode`);
  const waiting = Array.from({ length: POOL_SIZE }, (_, i) =>
    store.apiKeys.findActiveByHash(`busy_${i}`).catch(() => null),
  );
  const allWaiting = await until(async () => {
    const { rows } = await admin.query<{ n: number }>(
      'select count(*)::int as n from pg_locks where relation = $1::regclass and not granted',
      [table],
    );
    return rows[0]!.n === POOL_SIZE;
  });
  expect(allWaiting).toBe(true);
  return async () => {
    await admin.query('rollback').catch(() => undefined);
    await Promise.all(waiting);
    await admin.end();
  };
}

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
    const release = await holdEveryConnection(h, store);
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
