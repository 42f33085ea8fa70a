/**
 * A process that serves the API stays ready while Stripe does not answer (README: Stripe is shared by every process,
 * so taking them all out routes around nothing). But once the 5 s cached answer had run out, the next probe waited
 * for Stripe's fresh answer, up to the check's 2 s: a load balancer or Kubernetes probing with a 1 s timeout (its
 * default) every 10 s (past the cache each time) saw every probe time out, and took every API process out during a
 * Stripe that hangs. A probe now waits for Stripe only briefly once it has an answer to give: meanwhile it gives the
 * last one, and the check's own verdict (down: Stripe did not answer in time) follows as soon as it is in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

function stripeChecksEnded(metrics: string): number {
  let total = 0;
  for (const line of metrics.split('\n'))
    if (line.startsWith('payments_stripe_requests_total{operation="GET /v1/payment_intents"'))
      total += Number(line.split(' ').pop());
  return total;
}

describe('readiness while Stripe does not answer', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('sqlite', { LOG_LEVEL: 'warn' });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('a probe past the cached answer is answered before Stripe is, with the last answer, then degraded', async () => {
    const first = await getJson(`${svc.url}/readyz`);
    expect(first.status).toBe(200);
    expect(first.json.checks).toMatchObject({ stripe: 'ok' });
    const ended = stripeChecksEnded(await (await fetch(`${svc.url}/metrics`)).text());
    await svc.faults({ latency_ms: 20_000, match: { method: 'GET', path_prefix: '/v1/payment_intents' } });
    try {
      await new Promise((r) => setTimeout(r, 5100)); // past the cached Stripe answer
      const probe = await getJson(`${svc.url}/readyz`);
      // Stripe's check has not ended yet (it ends when Stripe answers or the check gives up), and the probe is in.
      const metrics = await (await fetch(`${svc.url}/metrics`)).text();
      expect(stripeChecksEnded(metrics)).toBe(ended);
      expect(probe.status).toBe(200);
      expect(probe.json).toEqual({
        status: 'ok',
        checks: { store: 'ok', broker: 'not_configured', stripe: 'ok' },
      });
      // Once the check gives up on Stripe, probes say so.
      const later = await eventually(
        () => getJson(`${svc.url}/readyz`),
        (r) => (r.json.checks as Record<string, string>)['stripe'] === 'down',
        10_000,
      );
      expect(later.status).toBe(200);
      expect(later.json).toEqual({
        status: 'ok',
        degraded: ['stripe'],
        checks: { store: 'ok', broker: 'not_configured', stripe: 'down' },
        reasons: { stripe: 'Stripe did not answer in time' },
      });
    } finally {
      await svc.faults({});
    }
  }, 30_000);
});
