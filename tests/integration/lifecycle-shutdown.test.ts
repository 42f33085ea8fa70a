/**
 * A stop (SIGTERM: service.close) while a request's handler is still at work after its answer went out: the
 * request timeout answered 503 while the handler's Stripe call went on. The stop closed the store under it, so
 * what Stripe then did was never written: the refund stayed `processing` and its Idempotency-Key held in
 * progress, and the client's retry, as the 503 asks, got 409 `idempotency_key_in_use` for ten minutes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { startService } from '../../src/service.js';
import { captureLogger } from '../helpers/log-capture.js';
import { paidIntent, postJson } from '../helpers/http.js';
import {
  startSharedStripe,
  startTestService,
  type SharedStripe,
  type TestService,
} from '../helpers/service.js';

describe('stopping while a handler outlives its answer', () => {
  let stripe: SharedStripe;
  let svc: TestService;

  beforeAll(async () => {
    stripe = await startSharedStripe();
    svc = await startTestService('sqlite', { ...stripe.env, API_AUTH: 'off', REQUEST_TIMEOUT_MS: '1000' });
  });
  afterAll(async () => {
    await svc?.stop();
    await stripe?.close();
  });

  it('waits for it, so the next process answers the retry with the refund Stripe made', async () => {
    const intent = await paidIntent(svc.url, 5000);
    await stripe.faults({ latency_ms: 2_500, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    const key = `lifecycle-stop-${Date.now()}`;
    const body = { payment_intent_id: intent, amount: 1200, request_id: key };
    const first = await postJson(`${svc.url}/refund`, body, { 'Idempotency-Key': key });
    expect(first.status).toBe(503); // the timeout's answer; the handler goes on

    await svc.close(); // what SIGTERM does
    await stripe.faults({});

    const { logger } = captureLogger('info');
    const next = await startService(
      loadConfig({
        NODE_ENV: 'test',
        PORT: '0',
        HOST: '127.0.0.1',
        DATABASE_URL: svc.deps.config.database.url,
        API_AUTH: 'off',
        ...stripe.env,
      }),
      logger,
    );
    try {
      const retry = await postJson(`${next.url}/refund`, body, { 'Idempotency-Key': key });
      expect(retry.status, retry.text).toBe(200);
      const refund = retry.json['refund'] as { id: string; status: string; amount: number };
      expect(refund).toMatchObject({ status: 'succeeded', amount: 1200 });
      expect(await next.deps.store.refunds.get(key)).toMatchObject({
        status: 'succeeded',
        stripeRefundId: refund.id,
      });
    } finally {
      await next.close();
    }
  }, 30_000);
});
