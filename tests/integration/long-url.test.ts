/**
 * Every request is logged with its URL, and every written line goes through the logger's secret scrubber. One of
 * its patterns (the password in a connection URL) started again at each word boundary of a run like a.a.a.a, so a
 * 16 kB request URL of that shape, sent by anyone to any path, held the event loop for about 140 ms: a few such
 * requests a second, not even counted by the rate limit (an unknown path never reaches it), stalled the service.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite', { LOG_LEVEL: 'info' });
});
afterAll(async () => {
  await svc?.stop();
});

describe('request URLs that the log scrubber used to scan again and again', () => {
  it('60 URLs of 14 kB like /a.a.a... do not stall the service', async () => {
    // Node takes request heads up to 16 kB.
    const url = `${svc.url}/${'a.'.repeat(7_000)}`;
    const started = performance.now();
    const statuses = await Promise.all(Array.from({ length: 60 }, () => fetch(url).then((r) => r.status)));
    const health = await fetch(`${svc.url}/healthz`);
    const elapsed = performance.now() - started;
    expect(statuses).toEqual(Array(60).fill(404));
    expect(health.status).toBe(200);
    // About 7 s of scanning before (0.5 s in all now). Wide of both, for a busy machine.
    expect(elapsed).toBeLessThan(2_500);
    // The lines are still written, each with its URL.
    expect(svc.lines.filter((l) => l.includes('"statusCode":404') && l.includes('a.a.a.a.'))).toHaveLength(
      60,
    );
  });
});
