/**
 * HEAD is GET without the body (RFC 9110, 9.3.2), and uptime monitors probe with it (some by default). The
 * contract lists GET operations only, so the validator answered every HEAD with 405, and a monitor probing
 * HEAD /healthz saw the service as down. A worker process's /healthz (plain routes) already answered it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite');
});
afterAll(async () => {
  await svc?.stop();
});

const head = (path: string) => fetch(`${svc.url}${path}`, { method: 'HEAD' });

describe('HEAD requests', () => {
  it('HEAD /healthz answers as GET does, without the body', async () => {
    const [h, g] = [await head('/healthz'), await fetch(`${svc.url}/healthz`)];
    expect(h.status).toBe(200);
    expect(g.status).toBe(200);
    expect(await h.text()).toBe('');
    expect(h.headers.get('content-type')).toBe(g.headers.get('content-type'));
    expect(h.headers.get('x-request-id')).toBeTruthy();
  });

  it("a GET operation's refusal is its own, without the body", async () => {
    const res = await head('/refund-status/no-such-request');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.text()).toBe('');
  });

  it('a path that takes only POST still answers 405, naming POST', async () => {
    const res = await head('/payment-intent');
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });

  it('is logged as the HEAD it was', async () => {
    const res = await head('/readyz');
    expect(res.status).toBe(200);
    const id = res.headers.get('x-request-id');
    const line = svc.lines
      .map((l) => JSON.parse(l) as { msg: string; req?: { id: string; method: string } })
      .find((l) => l.msg === 'request completed' && l.req?.id === id);
    expect(line?.req?.method).toBe('HEAD');
  });
});
