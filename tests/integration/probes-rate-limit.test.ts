/**
 * Health probes and the rate limit. Requests without an API key are limited per client IP, and with
 * TRUST_PROXY=false (the default) every request arriving through a proxy or load balancer has the proxy's
 * IP. /healthz and /readyz counted against that one bucket, so anyone able to send RATE_LIMIT_PER_MINUTE
 * unauthenticated requests (public /metrics scrapes, probes themselves, unknown paths...) made the load
 * balancer's probes answer 429 and take the instance out of service. Probes must never be rate limited.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let key: string;

beforeAll(async () => {
  svc = await startTestService('sqlite', { API_AUTH: 'on', RATE_LIMIT_PER_MINUTE: '5', LOG_LEVEL: 'warn' });
  key = (await createKey(svc.deps.store.apiKeys, { owner: 'probe', kind: 'secret' })).key;
});
afterAll(async () => {
  await svc?.stop();
});

describe('rate limit and health probes', () => {
  it('/healthz and /readyz keep answering 200 after the IP has used up its limit', async () => {
    const scrapes: number[] = [];
    for (let i = 0; i < 7; i++) scrapes.push((await fetch(`${svc.url}/metrics`)).status);
    // The limit is in force for everything else without a key...
    expect(scrapes.slice(-1)).toEqual([429]);
    // ...but never for the probes, however often they come.
    for (let i = 0; i < 10; i++) {
      expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
      expect((await fetch(`${svc.url}/readyz`)).status).toBe(200);
    }
  });

  it('API keys are still limited', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await fetch(`${svc.url}/refund-status/nope`, {
        headers: { authorization: `Bearer ${key}` },
      });
      statuses.push(res.status);
    }
    expect(statuses.slice(0, 5)).toEqual([404, 404, 404, 404, 404]);
    expect(statuses.slice(5)).toEqual([429, 429]);
  });
});
