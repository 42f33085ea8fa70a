/**
 * Stripe call metrics are labelled by operation, with ids folded into `:id` so labels stay few. The
 * contract's ids may hold `.` and `-` (`^pi_[A-Za-z0-9_.-]{1,250}$`), which the folding did not recognise:
 * with API keys off (embedded mode, API_AUTH=off) every id a caller made up reached Stripe and became a new
 * label value, i.e. new counter and histogram series without bound: memory that only grows, and an ever
 * larger /metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stripeOperation } from '../../src/ops/metrics.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService('sqlite', { API_AUTH: 'off', RATE_LIMIT_PER_MINUTE: '0', LOG_LEVEL: 'warn' });
});
afterAll(async () => {
  await svc?.stop();
});

describe('Stripe operation labels', () => {
  it('fold ids with dots and dashes', () => {
    expect(stripeOperation('GET', '/v1/payment_intents/pi_a.b-c')).toBe('GET /v1/payment_intents/:id');
    expect(stripeOperation('GET', '/v1/checkout/sessions/cs_test_a-1')).toBe('GET /v1/checkout/sessions/:id');
    expect(stripeOperation('POST', '/v1/refunds')).toBe('POST /v1/refunds');
  });

  it('made-up ids from callers do not add series to /metrics', async () => {
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${svc.url}/payment-intent/pi_made-up.${i}`);
      expect(res.status).toBe(404);
      await res.arrayBuffer();
      const session = await fetch(`${svc.url}/checkout-session?session_id=cs_made-up.${i}`);
      expect(session.status).toBe(404);
      await session.arrayBuffer();
    }
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    const operations = new Set(
      [...metrics.matchAll(/^payments_stripe_requests_total\{operation="([^"]+)"/gm)].map((m) => m[1]),
    );
    expect([...operations].filter((o) => o!.includes('made-up'))).toEqual([]);
    expect(operations.size).toBeLessThan(10);
  });
});

describe('HTTP operation labels', () => {
  it('count webhooks and log them under their operation, handleStripeWebhook, not with unknown paths', async () => {
    const before = svc.lines.length;
    const res = await fetch(`${svc.url}/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': 't=1,v1=00' },
      body: '{}',
    });
    expect(res.status).toBe(400);
    await res.arrayBuffer();
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(metrics).toMatch(
      /^payments_http_requests_total\{operation="handleStripeWebhook",status="400"\} 1$/m,
    );
    const logged = svc.lines
      .slice(before)
      .map((l) => JSON.parse(l) as { msg?: string; operationId?: string; req?: { url?: string } })
      .filter((l) => l.msg === 'request completed' && l.req?.url === '/webhook');
    expect(logged.map((l) => l.operationId)).toEqual(['handleStripeWebhook']);
  });
});
