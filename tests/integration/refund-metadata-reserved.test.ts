/**
 * A refund asked for what is left that Stripe refuses for want of money left is lowered to what Stripe has left;
 * the ledger marks such a refund in its stored metadata under `payment_service_lowered_from`, which it never sends
 * to Stripe. A client's own key of that name was accepted: dropped from the metadata Stripe was sent, and taken
 * for the mark. It is refused up front (400 metadata_key_reserved), with nothing recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService('sqlite', { RATE_LIMIT_PER_MINUTE: '0', LOG_LEVEL: 'warn' });
});
afterAll(async () => {
  await svc?.stop();
});

describe('refund metadata naming the ledger mark of a lowered refund', () => {
  it.each(['/refund', '/refund-async'])('%s → 400 metadata_key_reserved, nothing recorded', async (path) => {
    const pi = await paidIntent(svc.url, 1000);
    const requestId = `lowered-mark-${path.slice(1)}`;
    const res = await postJson(`${svc.url}${path}`, {
      payment_intent_id: pi,
      request_id: requestId,
      metadata: { payment_service_lowered_from: '5000' },
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({ code: 'metadata_key_reserved', param: 'metadata' });
    expect(JSON.stringify(res.json.errors)).toContain('/body/metadata/payment_service_lowered_from');
    expect((await getJson(`${svc.url}/refund-status/${requestId}`)).status).toBe(404);
    expect((await getJson(`${svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(0);
  });
});
