/**
 * A stop does not wait without end for webhook events still being applied: one whose read from Stripe hangs is
 * left stored (applied later by a retry sweep) once the stop's webhook budget is spent, so the process stops in
 * time and flushes its outbox rather than being killed by the shutdown timer.
 */
import { describe, expect, it } from 'vitest';
import { paidIntent } from '../helpers/http.js';
import { eventually, startTestService } from '../helpers/service.js';

describe('stopping while a webhook event is being applied', () => {
  it('waits for it no longer than the webhook budget', async () => {
    // The budget is shortened here (default 15 s) so the test does not wait it out.
    const svc = await startTestService('sqlite', { STRIPE_TIMEOUT_MS: '60000' }, { webhookDrainMs: 1_000 });
    let stopped = false;
    try {
      // Applying a payment intent's event reads the intent from Stripe; that read now takes 30 s.
      await svc.faults({ latency_ms: 30_000, match: { method: 'GET', path_prefix: '/v1/payment_intents' } });
      await paidIntent(svc.url, 1500);
      const received = await eventually(
        () => svc.deps.store.inbox.count(),
        (n) => n > 0,
      );
      expect(received).toBeGreaterThan(0);
      const began = Date.now();
      await svc.stop();
      stopped = true;
      const ms = Date.now() - began;
      expect(ms).toBeLessThan(10_000);
      expect(svc.lines.some((l) => l.includes('webhook events still being applied at shutdown'))).toBe(true);
    } finally {
      if (!stopped) await svc.stop();
    }
  }, 90_000);
});
