/**
 * Probes and scrapes (GET /healthz, /readyz, /metrics) come every few seconds from an orchestrator and from
 * Prometheus: their request lines are debug, so that at the default level the log shows the requests that
 * matter. A /readyz 503 is a warning (the dependency's own errors say what failed), not an error line per probe.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox } from '../../src/sandbox/index.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite', { API_AUTH: 'off' });
});
afterAll(async () => {
  await svc?.stop();
});

interface Line {
  level: number;
  msg?: string;
  req?: { url?: string };
  res?: { statusCode?: number };
}

async function levelsOf(paths: string[]): Promise<Record<string, number[]>> {
  const before = svc.lines.length;
  for (const p of paths) await (await fetch(`${svc.url}${p}`)).arrayBuffer();
  const levels: Record<string, number[]> = {};
  for (const l of svc.lines.slice(before).map((x) => JSON.parse(x) as Line)) {
    if (l.msg !== 'request completed' || !l.req?.url) continue;
    (levels[`${l.req.url} ${l.res?.statusCode}`] ??= []).push(l.level);
  }
  return levels;
}

describe('request lines of probes and scrapes', () => {
  it('are debug when they succeed; other requests stay info', async () => {
    expect(await levelsOf(['/healthz', '/readyz', '/metrics', '/payment-intent/pi_nobodyKnows'])).toEqual({
      '/healthz 200': [20],
      '/readyz 200': [20],
      '/metrics 200': [20],
      '/payment-intent/pi_nobodyKnows 404': [30],
    });
  });

  it('a /readyz 503 is a warning, not an error', async () => {
    // A service of its own, whose key Stripe refuses: not ready (Stripe merely failing leaves it ready, degraded).
    const sandbox = await startSandbox({ secretKey: 'sk_test_theKeyStripeKnows0000000003' });
    const down = await startTestService('sqlite', {
      API_AUTH: 'off',
      STRIPE_SECRET_KEY: 'sk_test_aKeyStripeDoesNotKnow00003',
      STRIPE_API_BASE: sandbox.url,
    });
    try {
      const before = down.lines.length;
      expect((await fetch(`${down.url}/readyz`)).status).toBe(503);
      const lines = down.lines
        .slice(before)
        .map((x) => JSON.parse(x) as Line)
        .filter((l) => l.msg === 'request completed');
      expect(lines.map((l) => [l.req?.url, l.res?.statusCode, l.level])).toEqual([['/readyz', 503, 40]]);
    } finally {
      await down.stop();
      await sandbox.close();
    }
  });
});
