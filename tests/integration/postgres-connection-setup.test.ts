/**
 * Every new PostgreSQL connection is set up (READ COMMITTED, the statement timeouts, the schema) before its first
 * use. When that setup fails (the network drops it, the server ends the session) the connection must be thrown
 * away: kept checked out, it is lost to the pool for good, and after as many failures as the pool has slots
 * every request waits for a connection that never comes (and a stop waits for it forever); handed out, it would
 * run without READ COMMITTED or the service's schema.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestServiceBehindProxy, type TestService } from '../helpers/service.js';
import { postgresAvailable } from '../helpers/services.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('a PostgreSQL connection whose setup fails', () => {
  let proxy: TcpProxy;
  let svc: TestService;
  let stopped = false;
  beforeAll(async () => {
    ({ proxy, svc } = await startTestServiceBehindProxy({
      // One slot: a connection lost to the pool shows at once.
      DATABASE_POOL_SIZE: '1',
      DATABASE_TIMEOUT_MS: '400',
      REQUEST_TIMEOUT_MS: '5000',
    }));
  });
  afterAll(async () => {
    await proxy?.close();
    if (!stopped) await svc?.stop();
  });

  it('is thrown away: the next request gets a fresh, set-up connection, and the service stops', async () => {
    const pi = await paidIntent(svc.url, 5000);
    // New connections now lose their setup statement on the way; the pooled one has to go so that a new one
    // is made (the pool drops a connection whose statement goes unanswered).
    proxy.silenceConnectionsSending('default_transaction_isolation');
    proxy.blackHole();
    expect((await getJson(`${svc.url}/payment-intent/${pi}`)).status).toBe(503);
    proxy.forward();
    // The next request opens a connection whose setup is swallowed: a 503 after the timeout.
    const failed = await getJson(`${svc.url}/payment-intent/${pi}`);
    expect(failed.status).toBe(503);
    expect(failed.json).toMatchObject({ code: 'store_unavailable' });

    proxy.silenceConnectionsSending(null);
    const back = await eventually(
      () =>
        postJson(`${svc.url}/refund-async`, {
          payment_intent_id: pi,
          amount: 700,
          request_id: 'after-setup',
        }),
      (r) => r.status === 202,
      5_000,
    );
    expect(back.status).toBe(202);
    // It runs in the service's schema (the setup's search_path), where the refund is.
    const rows = await svc.sql("SELECT amount FROM refunds WHERE request_id = 'after-setup'");
    expect(rows.map((r) => Number(r['amount']))).toEqual([700]);

    const started = Date.now();
    await svc.stop();
    stopped = true;
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
