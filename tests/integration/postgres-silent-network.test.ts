/**
 * A network path to PostgreSQL that goes silent (no reset: a firewall dropping the flow, a failover, a
 * suspended VM) used to hang every request waiting on a query until the kernel gave up on the connection,
 * some fifteen minutes, each holding a pooled connection; once all were held, every request hung. Now a
 * query without an answer fails after DATABASE_TIMEOUT_MS with the store's 503, its connection is closed
 * rather than pooled again, and the service recovers as soon as the path does.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestServiceBehindProxy, type TestService } from '../helpers/service.js';
import { postgresAvailable } from '../helpers/services.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';

const pgOk = await postgresAvailable();

const DATABASE_TIMEOUT_MS = 400;
const REQUEST_TIMEOUT_MS = 5_000;
const POOL_SIZE = 3;

describe.skipIf(!pgOk)('PostgreSQL behind a network path that goes silent', () => {
  let proxy: TcpProxy;
  let svc: TestService;
  beforeAll(async () => {
    ({ proxy, svc } = await startTestServiceBehindProxy({
      DATABASE_POOL_SIZE: String(POOL_SIZE),
      DATABASE_TIMEOUT_MS: String(DATABASE_TIMEOUT_MS),
      REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    }));
  });
  afterAll(async () => {
    // The proxy goes first: closing its sockets fails whatever still waits on one (before the fix, every
    // pooled connection), so the service can close. stop() drops the schema over a direct connection.
    await proxy?.close();
    await svc?.stop();
  });

  it('answers 503 problem+json within the timeout, never exhausts the pool, and recovers', async () => {
    const pi = await paidIntent(svc.url, 5000);
    const known = `silent-${randomBytes(4).toString('hex')}`;
    const accepted = await postJson(`${svc.url}/refund-async`, {
      payment_intent_id: pi,
      amount: 1000,
      request_id: known,
    });
    expect(accepted.status).toBe(202);
    expect((await getJson(`${svc.url}/refund-status/${known}`)).status).toBe(200);

    proxy.blackHole();
    // More requests than the pool has connections: each one's connection is given up, not pooled again.
    for (let i = 0; i < POOL_SIZE + 2; i++) {
      const started = Date.now();
      const res = await getJson(`${svc.url}/refund-status/${known}`);
      const took = Date.now() - started;
      expect(res.status).toBe(503);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.headers.get('retry-after')).toBe('1');
      expect(res.json).toMatchObject({ status: 503, code: 'store_unavailable' });
      // The store's answer, well before the HTTP timeout's.
      expect(took).toBeLessThan(REQUEST_TIMEOUT_MS / 2);
    }
    // A refund asked for meanwhile fails retryably; its retry below makes it once.
    const fresh = `silent-${randomBytes(4).toString('hex')}`;
    const body = { payment_intent_id: pi, amount: 500, request_id: fresh };
    const headers = { 'idempotency-key': `key-${fresh}` };
    const refused = await postJson(`${svc.url}/refund-async`, body, headers);
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ code: 'store_unavailable' });
    expect((await getJson(`${svc.url}/healthz`)).status).toBe(200);

    proxy.forward();
    const back = await eventually(
      () => getJson(`${svc.url}/refund-status/${known}`),
      (r) => r.status === 200,
      5_000,
    );
    expect(back.status).toBe(200);
    expect(back.json).toMatchObject({ request_id: known });

    const retried = await eventually(
      () => postJson(`${svc.url}/refund-async`, body, headers),
      (r) => r.status === 202,
      5_000,
    );
    expect(retried.status).toBe(202);
    const again = await postJson(`${svc.url}/refund-async`, body, headers);
    expect(again.status).toBe(202);
    const refunds = await svc.deps.store.refunds.listForPaymentIntent(pi);
    expect(refunds.map((r) => r.requestId).sort()).toEqual([known, fresh].sort());
  });
});
