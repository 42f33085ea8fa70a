/**
 * Answers Node makes before Express sees a request, written on the connection itself: 400 for HTTP that cannot be
 * parsed, 431 for headers over the limit, 417 for an Expect other than 100-continue, 405 for CONNECT (408 for a
 * request head that never arrives: tests/integration/connection-edges.test.ts). Every other answer of the service
 * carries an X-Request-Id that its problem body repeats as request_id, and the API's security headers; these went
 * out with none of them (but the 405), so a client or an operator had nothing to match a 400 or 431 with the logs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';
import { sendRaw as sendRawTo } from '../helpers/raw-http.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService('sqlite', { API_AUTH: 'off', RATE_LIMIT_PER_MINUTE: '0' });
});
afterAll(async () => {
  await svc?.stop();
});

const sendRaw = (bytes: string) => sendRawTo(svc.url, bytes);

interface RawAnswer {
  statusLine: string;
  headers: Map<string, string[]>;
  body: string;
}

function parse(answer: string): RawAnswer {
  const end = answer.indexOf('\r\n\r\n');
  const [statusLine = '', ...lines] = answer.slice(0, end).split('\r\n');
  const headers = new Map<string, string[]>();
  for (const line of lines) {
    const at = line.indexOf(':');
    const name = line.slice(0, at).toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(at + 1).trim()]);
  }
  return { statusLine, headers, body: answer.slice(end + 4) };
}

const SECURITY_HEADERS = [
  'cache-control',
  'content-security-policy',
  'strict-transport-security',
  'x-content-type-options',
  'x-frame-options',
];

const HOST = 'Host: 127.0.0.1\r\n';
const BEFORE_EXPRESS: ReadonlyArray<readonly [string, string, number]> = [
  ['a header name with a control byte', `GET /healthz HTTP/1.1\r\n${HOST}X-Bad\x01Header: 1\r\n\r\n`, 400],
  ['no HTTP at all', 'NOT HTTP\r\n\r\n', 400],
  ['headers over 16 kB', `GET /healthz HTTP/1.1\r\n${HOST}X-Big: ${'h'.repeat(20_000)}\r\n\r\n`, 431],
  [
    'an Expect other than 100-continue',
    `POST /payment-intent HTTP/1.1\r\n${HOST}Content-Type: application/json\r\nContent-Length: 2\r\nExpect: 200-ok\r\n\r\n`,
    417,
  ],
  ['CONNECT', 'CONNECT stripe.com:443 HTTP/1.1\r\nHost: stripe.com:443\r\n\r\n', 405],
];

describe('answers made before Express', () => {
  it.each(BEFORE_EXPRESS)(
    '%s: an X-Request-Id that the body repeats as request_id, and the security headers',
    async (_name, bytes, status) => {
      const expressAnswer = parse(
        await sendRaw(`DELETE /refund HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`),
      );
      const { statusLine, headers, body } = parse(await sendRaw(bytes));
      expect(statusLine).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(headers.get('content-type')).toEqual(['application/problem+json']);
      expect(headers.get('content-length')).toEqual([String(Buffer.byteLength(body))]);
      expect(headers.get('connection')).toEqual(['close']);
      for (const name of SECURITY_HEADERS) {
        expect(expressAnswer.headers.get(name), name).toBeDefined();
        expect(headers.get(name), name).toEqual(expressAnswer.headers.get(name));
      }
      const ids = headers.get('x-request-id');
      expect(ids).toHaveLength(1);
      const problem = JSON.parse(body) as Record<string, unknown>;
      expect(problem).toMatchObject({ type: 'about:blank', status });
      expect(problem['request_id']).toBe(ids![0]);
    },
  );

  it('each malformed request gets an id of its own', async () => {
    const bytes = BEFORE_EXPRESS[0]![1];
    const a = parse(await sendRaw(bytes)).headers.get('x-request-id')?.[0];
    const b = parse(await sendRaw(bytes)).headers.get('x-request-id')?.[0];
    expect(a).toBeDefined();
    expect(b).toBeDefined();
    expect(b).not.toBe(a);
  });

  it("417 keeps the client's X-Request-Id when it is plain (its headers were read), a new one otherwise", async () => {
    const expect417 = (id: string) =>
      `POST /payment-intent HTTP/1.1\r\n${HOST}X-Request-Id: ${id}\r\nContent-Length: 2\r\nExpect: 200-ok\r\n\r\n`;
    const kept = parse(await sendRaw(expect417('client-trace-417')));
    expect(kept.headers.get('x-request-id')).toEqual(['client-trace-417']);
    expect((JSON.parse(kept.body) as { request_id: string }).request_id).toBe('client-trace-417');

    const made = parse(await sendRaw(expect417('<script>')));
    const [id] = made.headers.get('x-request-id') ?? [];
    expect(id).toBeDefined();
    expect(id).not.toContain('script');
    expect((JSON.parse(made.body) as { request_id: string }).request_id).toBe(id);
  });

  it('a malformed HEAD is answered without a body, with its X-Request-Id', async () => {
    const answer = await sendRaw(`HEAD /healthz HTTP/1.1\r\n${HOST}X-Bad\x01Header: 1\r\n\r\n`);
    const { statusLine, headers, body } = parse(answer);
    expect(statusLine).toMatch(/^HTTP\/1\.1 400 /);
    expect(body).toBe('');
    expect(headers.get('x-request-id')).toHaveLength(1);
    expect(Number(headers.get('content-length')?.[0])).toBeGreaterThan(0);
  });

  it('a body that cannot be parsed after its headers were read: the id the request was given and logged with', async () => {
    // The headers were read, so the app gave the request its id (here the client's) before Node found the body's
    // chunk size malformed: the answer carries that id, the one the request's log lines carry.
    const answer = await sendRaw(
      `POST /payment-intent HTTP/1.1\r\n${HOST}X-Request-Id: client-trace-chunk\r\n` +
        'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    );
    const { statusLine, headers, body } = parse(answer);
    expect(statusLine).toMatch(/^HTTP\/1\.1 400 /);
    expect(headers.get('x-request-id')).toEqual(['client-trace-chunk']);
    expect((JSON.parse(body) as { request_id: string }).request_id).toBe('client-trace-chunk');
    await expect
      .poll(() => svc.lines.filter((l) => l.includes('"reqId":"client-trace-chunk"')).length)
      .toBeGreaterThan(0);
  });

  it('is logged with its request id and status, and without the headers it was sent', async () => {
    const secret = 'sk_test_notlogged0123456789';
    const before = svc.lines.length;
    const answer = await sendRaw(
      `GET /healthz HTTP/1.1\r\n${HOST}Authorization: Bearer ${secret}\r\nX-Bad\x01Header: 1\r\n\r\n`,
    );
    const [id] = parse(answer).headers.get('x-request-id') ?? [];
    expect(id).toBeDefined();
    await expect
      .poll(() => svc.lines.slice(before).filter((l) => l.includes(`"reqId":"${id}"`)).length)
      .toBe(1);
    const line = JSON.parse(svc.lines.slice(before).find((l) => l.includes(`"reqId":"${id}"`))!) as {
      level: number;
      res?: { statusCode?: number };
    };
    expect(line.res?.statusCode).toBe(400);
    // Not a fault of the service's: info, as the request line of any other 4xx.
    expect(line.level).toBe(30);
    expect(svc.lines.slice(before).filter((l) => l.includes(secret))).toEqual([]);
  });
});
