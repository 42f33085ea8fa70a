/**
 * /readyz is answered to anyone, uncapped and never rate limited (a load balancer's probes must get through), and it
 * asks Stripe whether this process's key works, keeping the answer 5 s. Each probe arriving while that question was
 * under way asked it again: a burst of anonymous probes became as many Stripe calls made with the service's key,
 * spending the account's rate limit that payments and refunds need.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

function metricValue(text: string, name: string, labels: Record<string, string>): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (want.every((w) => line.includes(w))) total += Number(line.split(' ').pop());
  }
  return total;
}

describe('readiness probes and Stripe', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('sqlite', { LOG_LEVEL: 'warn' });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('a burst of probes while Stripe is being asked makes one Stripe call, and all answer alike', async () => {
    const listing = { operation: 'GET /v1/payment_intents' };
    const stripeCalls = async () =>
      metricValue(
        await (await fetch(`${svc.url}/metrics`)).text(),
        'payments_stripe_requests_total',
        listing,
      );
    const before = await stripeCalls();
    // Slow enough that every probe of the burst arrives while the first one's question is under way.
    await svc.faults({ latency_ms: 1_000, match: { method: 'GET', path_prefix: '/v1/payment_intents' } });
    try {
      const answers = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const res = await fetch(`${svc.url}/readyz`);
          return { status: res.status, body: (await res.json()) as { checks: Record<string, string> } };
        }),
      );
      expect(answers.map((a) => [a.status, a.body.checks['stripe']])).toEqual(
        Array.from({ length: 20 }, () => [200, 'ok']),
      );
    } finally {
      await svc.faults({});
    }
    expect((await stripeCalls()) - before).toBe(1);
  });
});
