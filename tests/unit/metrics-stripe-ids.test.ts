/**
 * Stripe call metrics fold the id in a call's path into `:id`, recognising ids by a list of prefixes (pi_, re_, ch_,
 * ...). Real Stripe hands out ids with other prefixes to the calls the service makes: a refund of some payment
 * methods is `pyr_...` (its charge `py_...`), and the service reads a refund by the id a webhook names. Each such
 * refund read was a new `operation` label value on /metrics: a counter and a 13-bucket histogram more, per refund, for
 * as long as the process runs.
 */
import { describe, expect, it } from 'vitest';
import { createMetrics, stripeOperation } from '../../src/ops/metrics.js';

describe('Stripe operation labels', () => {
  it('fold ids whatever their prefix', () => {
    expect(stripeOperation('GET', '/v1/refunds/pyr_1MvBzH2eZvKYlo2C0u2x0Q5w')).toBe('GET /v1/refunds/:id');
    expect(stripeOperation('POST', '/v1/refunds/pyr_1MvBzH2eZvKYlo2C0u2x0Q5w/cancel')).toBe(
      'POST /v1/refunds/:id/cancel',
    );
    expect(stripeOperation('GET', '/v1/charges/py_3MtwBwLkdIwHu7ix28a3tqPa')).toBe('GET /v1/charges/:id');
    expect(stripeOperation('GET', '/v1/checkout/sessions/cs_live_a1B2c3')).toBe(
      'GET /v1/checkout/sessions/:id',
    );
  });

  it("keep the API's own words", () => {
    expect(stripeOperation('GET', '/v1/payment_intents?limit=1')).toBe('GET /v1/payment_intents');
    expect(stripeOperation('GET', '/v1/checkout/sessions/cs_test_1/line_items')).toBe(
      'GET /v1/checkout/sessions/:id/line_items',
    );
    expect(stripeOperation('POST', '/v1/payment_intents/pi_1/confirm')).toBe(
      'POST /v1/payment_intents/:id/confirm',
    );
  });

  it('reading refunds with ids of other prefixes adds no series to /metrics', async () => {
    const metrics = createMetrics();
    for (let i = 0; i < 25; i++) {
      metrics.observeStripe({
        method: 'GET',
        path: `/v1/refunds/pyr_1MvBzH2eZvKYlo2C${String(i).padStart(8, '0')}`,
        status: 200,
        elapsedMs: 12,
      });
    }
    const text = await metrics.render();
    const operations = new Set(
      [...text.matchAll(/^payments_stripe_requests_total\{operation="([^"]+)"/gm)].map((m) => m[1]),
    );
    expect([...operations]).toEqual(['GET /v1/refunds/:id']);
    expect(text).toMatch(
      /^payments_stripe_requests_total\{operation="GET \/v1\/refunds\/:id",outcome="ok"\} 25$/m,
    );
  });
});
