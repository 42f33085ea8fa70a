/**
 * A HEAD is routed as a GET (buildApp, so that GET operations answer it), and the problem of a HEAD that no
 * operation takes named GET: HEAD /refund was answered 405 "GET is not allowed on /refund.", HEAD /nope 404 "No
 * operation at GET /nope.". A HEAD's answer carries no body, but its Content-Length is that of the problem it
 * describes (RFC 9110, 9.3.2), and the problem names the method sent. Allow stays the path's own.
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

/**
 * The answer to HEAD `path`, and the problem body a GET of `path` gets, both under one X-Request-Id (the body repeats
 * it), so that the two bodies differ only in what they say of the method.
 */
async function headAndGet(path: string, requestId: string) {
  const headers = { 'x-request-id': requestId };
  const head = await fetch(`${svc.url}${path}`, { method: 'HEAD', headers });
  expect(await head.text()).toBe('');
  const get = await fetch(`${svc.url}${path}`, { headers });
  const getBody = (await get.json()) as Record<string, unknown>;
  return { head, get, getBody };
}

describe('the problem of a HEAD names HEAD', () => {
  it.each(['/refund', '/refund-async', '/payment-intent', '/create-checkout-session'])(
    'HEAD %s: 405, Allow: POST, a problem saying HEAD is not allowed',
    async (path) => {
      const { head, get, getBody } = await headAndGet(path, `head-405${path.replace(/\//g, '-')}`);
      expect(head.status).toBe(405);
      expect(head.headers.get('allow')).toBe('POST');
      expect(head.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(get.status).toBe(405);
      expect(getBody.detail).toBe(`GET is not allowed on ${path}.`);
      const described = JSON.stringify({ ...getBody, detail: `HEAD is not allowed on ${path}.` });
      expect(Number(head.headers.get('content-length'))).toBe(Buffer.byteLength(described));
    },
  );

  it('HEAD of an unknown path: 404, a problem saying there is no operation at HEAD', async () => {
    const { head, get, getBody } = await headAndGet('/no-such-operation', 'head-404');
    expect(head.status).toBe(404);
    expect(head.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(get.status).toBe(404);
    expect(getBody.detail).toBe('No operation at GET /no-such-operation.');
    const described = JSON.stringify({ ...getBody, detail: 'No operation at HEAD /no-such-operation.' });
    expect(Number(head.headers.get('content-length'))).toBe(Buffer.byteLength(described));
  });

  it('HEAD of a GET operation is still answered as its GET (Content-Length of the GET body)', async () => {
    const { head, get, getBody } = await headAndGet('/healthz', 'head-healthz');
    expect(head.status).toBe(200);
    expect(get.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(Buffer.byteLength(JSON.stringify(getBody)));
  });
});
