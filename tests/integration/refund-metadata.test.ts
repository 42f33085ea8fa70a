/**
 * The contract lets a refund carry up to 50 metadata pairs "passed through to Stripe", but every refund the
 * service makes also carries its own `request_id` key (how it finds its refunds again at Stripe). With 50
 * pairs of the caller's, Stripe is sent 51 and refuses them (as the sandbox does): POST /refund answered a
 * 400 saying "you passed in 51 keys" after the refund was already recorded as failed (its request_id
 * burnt), and POST /refund-async accepted it (202) for a worker that can only fail it. A caller's own
 * `request_id` metadata key was silently replaced. Both must be refused up front, naming /body/metadata,
 * with nothing recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let auth: Record<string, string>;

beforeAll(async () => {
  svc = await startTestService('sqlite', {
    API_AUTH: 'on',
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
  });
  const { key } = await createKey(svc.deps.store.apiKeys, { owner: 'edges', kind: 'secret' });
  auth = { authorization: `Bearer ${key}` };
});
afterAll(async () => {
  await svc?.stop();
});

const fifty = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, 'v']));
const fortyNine = Object.fromEntries(Array.from({ length: 49 }, (_, i) => [`k${i}`, 'v']));

describe('refund metadata and the key the service adds', () => {
  it.each(['/refund', '/refund-async'])(
    '%s with 50 metadata pairs → 400 on /body/metadata, nothing recorded',
    async (path) => {
      const pi = await paidIntent(svc.url, 1000, { headers: auth });
      const requestId = `meta50-${path.slice(1)}`;
      const res = await postJson(
        `${svc.url}${path}`,
        { payment_intent_id: pi, amount: 100, request_id: requestId, metadata: fifty },
        auth,
      );
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(JSON.stringify(res.json.errors)).toContain('/body/metadata');
      expect((await getJson(`${svc.url}/refund-status/${requestId}`, auth)).status).toBe(404);
    },
  );

  it.each(['/refund', '/refund-async'])(
    '%s with a request_id metadata key of its own → 400, not silently replaced',
    async (path) => {
      const pi = await paidIntent(svc.url, 1000, { headers: auth });
      const res = await postJson(
        `${svc.url}${path}`,
        { payment_intent_id: pi, amount: 100, metadata: { request_id: 'mine' } },
        auth,
      );
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.json.errors)).toContain('/body/metadata');
    },
  );

  it('49 pairs still go through to Stripe, sync and queued', async () => {
    const pi = await paidIntent(svc.url, 1000, { headers: auth });
    const now = await postJson(
      `${svc.url}/refund`,
      { payment_intent_id: pi, amount: 100, metadata: fortyNine },
      auth,
    );
    expect(now.status).toBe(200);
    expect(now.json.refund).toMatchObject({ status: 'succeeded' });
    const later = await postJson(
      `${svc.url}/refund-async`,
      { payment_intent_id: pi, amount: 100, request_id: 'meta49-async', metadata: fortyNine },
      auth,
    );
    expect(later.status).toBe(202);
    const done = await eventually(
      () => getJson(`${svc.url}/refund-status/meta49-async`, auth),
      (r) => r.json?.status === 'succeeded' || r.json?.status === 'failed',
    );
    expect(done.json.status).toBe('succeeded');
  });
});
