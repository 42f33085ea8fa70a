/**
 * CONNECT is answered by the server's 'connect' listener, on the raw socket, before Express: its 405 went out without
 * the headers every other answer carries (nosniff, the CSP, no-store, HSTS, X-Frame-Options) and without the
 * X-Request-Id a client quotes when it reports a problem, and its body without the request_id every other problem body
 * carries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { sendRaw } from '../helpers/raw-http.js';

/** The body of a raw answer, parsed as JSON. */
function bodyOf(answer: string): unknown {
  return JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
}

function headersOf(answer: string): Map<string, string[]> {
  const lines = answer.split('\r\n\r\n')[0]!.split('\r\n').slice(1);
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const at = line.indexOf(':');
    const name = line.slice(0, at).toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(at + 1).trim()]);
  }
  return headers;
}

describe("CONNECT's 405", () => {
  let svc: TestService;

  beforeAll(async () => {
    svc = await startTestService('sqlite', { API_AUTH: 'off' });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it("carries the service's security headers, as a 405 Express answers does", async () => {
    const connectAnswer = headersOf(
      await sendRaw(svc.url, 'CONNECT stripe.com:443 HTTP/1.1\r\nHost: stripe.com:443\r\n\r\n'),
    );
    const expressAnswer = headersOf(
      await sendRaw(svc.url, 'DELETE /refund HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'),
    );
    for (const name of [
      'cache-control',
      'content-security-policy',
      'strict-transport-security',
      'x-content-type-options',
      'x-frame-options',
    ]) {
      expect(expressAnswer.get(name), name).toBeDefined();
      expect(connectAnswer.get(name), name).toEqual(expressAnswer.get(name));
    }
  });

  it('carries an X-Request-Id: the one the client sent when it is plain, a new one otherwise', async () => {
    const kept = headersOf(
      await sendRaw(
        svc.url,
        'CONNECT stripe.com:443 HTTP/1.1\r\nHost: stripe.com:443\r\nX-Request-Id: client-trace-42\r\n\r\n',
      ),
    );
    expect(kept.get('x-request-id')).toEqual(['client-trace-42']);

    const made = headersOf(
      await sendRaw(
        svc.url,
        'CONNECT stripe.com:443 HTTP/1.1\r\nHost: stripe.com:443\r\nX-Request-Id: <script>\r\n\r\n',
      ),
    );
    expect(made.get('x-request-id')).toHaveLength(1);
    expect(made.get('x-request-id')![0]).toMatch(/^[0-9a-f-]{36}$/);
    const other = headersOf(
      await sendRaw(svc.url, 'CONNECT stripe.com:443 HTTP/1.1\r\nHost: stripe.com:443\r\n\r\n'),
    );
    expect(other.get('x-request-id')![0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(other.get('x-request-id')![0]).not.toBe(made.get('x-request-id')![0]);
  });

  it("has the X-Request-Id as its body's request_id, as every other problem body has", async () => {
    for (const given of ['X-Request-Id: client-trace-43\r\n', 'X-Request-Id: <script>\r\n', '']) {
      const answer = await sendRaw(
        svc.url,
        `CONNECT stripe.com:443 HTTP/1.1\r\nHost: stripe.com:443\r\n${given}\r\n`,
      );
      const [requestId] = headersOf(answer).get('x-request-id') ?? [];
      expect(requestId, given).toBeDefined();
      // No instance: an authority-form target (stripe.com:443) names a host, not a path on this service.
      expect(bodyOf(answer), given).toEqual({
        type: 'about:blank',
        title: 'Method Not Allowed',
        status: 405,
        detail: 'CONNECT is not supported: this service is not a proxy.',
        request_id: requestId,
      });
    }
  });
});
