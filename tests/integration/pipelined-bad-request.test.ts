/**
 * HTTP/1.1 pipelining: a complete request, and in the same write on the same connection a request Node cannot
 * parse or a CONNECT. The first answer on a connection is the first request's (RFC 9112, 9.3.2: answers go in the
 * order the requests came), yet the raw 400 (answerMalformedRequest) or 405 (refuseConnect) was written at once,
 * carrying the first request's X-Request-Id: a refund that was made was answered as refused, and its own answer
 * lost (logged 499). Now the answers of the requests read whole go out first: after unparsable HTTP the last of
 * them says `Connection: close` and the connection closes (nothing more can be read); a CONNECT, whose head was
 * read, is answered its 405 after them. Only when the request in flight is itself incomplete (a malformed chunk in
 * its body) is the raw 400 its answer, with its id (also tests/integration/raw-answers.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { sendRawUntilClosed } from '../helpers/raw-http.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService('sqlite', { API_AUTH: 'off', RATE_LIMIT_PER_MINUTE: '0' });
});
afterAll(async () => {
  await svc?.stop();
});

const sendRaw = (bytes: string) => sendRawUntilClosed(svc.url, bytes);

interface Answer {
  status: number;
  headers: Map<string, string>;
  body: string;
}

/** The answers in `data`, in order (each with a Content-Length, as all of the service's are). */
function answers(data: string): Answer[] {
  const out: Answer[] = [];
  let rest = data;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) throw new Error(`incomplete answer: ${JSON.stringify(rest.slice(0, 200))}`);
    const [statusLine = '', ...lines] = rest.slice(0, end).split('\r\n');
    const headers = new Map<string, string>();
    for (const line of lines) {
      const at = line.indexOf(':');
      headers.set(line.slice(0, at).toLowerCase(), line.slice(at + 1).trim());
    }
    const length = Number(headers.get('content-length') ?? '0');
    out.push({
      status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine)?.[1]),
      headers,
      body: rest.slice(end + 4, end + 4 + length),
    });
    rest = rest.slice(end + 4 + length);
  }
  return out;
}

/** The status of each line the service logged for the request with this id (one per answer). */
const loggedStatuses = (requestId: string): number[] =>
  svc.lines
    .filter((l) => l.includes(`"reqId":"${requestId}"`))
    .map((l) => (JSON.parse(l) as { res?: { statusCode?: number } }).res?.statusCode)
    .filter((s): s is number => s !== undefined);

const HOST = 'Host: 127.0.0.1\r\n';
const UNPARSABLE = `GET /healthz HTTP/1.1\r\n${HOST}X-Bad\x01Header: 1\r\n\r\n`;
const CONNECT =
  'CONNECT stripe.com:443 HTTP/1.1\r\nHost: stripe.com:443\r\nX-Request-Id: pipelined-connect\r\n\r\n';

async function refundRequest(requestId: string): Promise<string> {
  const pi = await paidIntent(svc.url, 5000);
  const body = JSON.stringify({ payment_intent_id: pi, amount: 1000, request_id: requestId });
  return (
    `POST /refund HTTP/1.1\r\n${HOST}X-Request-Id: ${requestId}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

async function expectRefunded(requestId: string): Promise<void> {
  await expect
    .poll(async () => (await getJson(`${svc.url}/refund-status/${requestId}`)).json?.['status'])
    .toBe('succeeded');
}

describe('a bad request pipelined after a complete one', () => {
  it('unparsable HTTP after a refund: the refund gets its own answer, then the connection closes', async () => {
    const requestId = `pipelined-bad-${Date.now()}`;
    const { data, closed } = await sendRaw((await refundRequest(requestId)) + UNPARSABLE);
    await expectRefunded(requestId);
    const [first, ...more] = answers(data);
    expect(first?.status).toBe(200);
    expect(first?.headers.get('x-request-id')).toBe(requestId);
    const created = JSON.parse(first!.body) as { refund?: { status?: string }; request_id?: string };
    expect(created.refund?.status).toBe('succeeded');
    expect(created.request_id).toBe(requestId);
    // No keep-alive: the parser is in error, so nothing more can be read on this connection.
    expect(first?.headers.get('connection')).toBe('close');
    expect(more).toEqual([]);
    expect(closed).toBe(true);
    await expect.poll(() => loggedStatuses(requestId)).toEqual([200]);
  });

  it("a CONNECT after a refund: the refund's answer, then the CONNECT's 405 with its own id", async () => {
    const requestId = `pipelined-connect-${Date.now()}`;
    const { data, closed } = await sendRaw((await refundRequest(requestId)) + CONNECT);
    await expectRefunded(requestId);
    const [first, second, ...more] = answers(data);
    expect(first?.status).toBe(200);
    expect(first?.headers.get('x-request-id')).toBe(requestId);
    expect(second?.status).toBe(405);
    expect(second?.headers.get('x-request-id')).toBe('pipelined-connect');
    expect(second?.headers.get('allow')).toBe('GET, HEAD, POST');
    expect(more).toEqual([]);
    expect(closed).toBe(true);
    await expect.poll(() => loggedStatuses(requestId)).toEqual([200]);
    await expect.poll(() => loggedStatuses('pipelined-connect')).toEqual([405]);
  });

  it('unparsable HTTP after two complete requests: both are answered, in order, then the connection closes', async () => {
    const ids = [`pipelined-a-${Date.now()}`, `pipelined-b-${Date.now()}`];
    const { data, closed } = await sendRaw(
      ids.map((id) => `GET /healthz HTTP/1.1\r\n${HOST}X-Request-Id: ${id}\r\n\r\n`).join('') + UNPARSABLE,
    );
    const got = answers(data);
    expect(got.map((a) => [a.status, a.headers.get('x-request-id')])).toEqual(ids.map((id) => [200, id]));
    expect(got.at(-1)?.headers.get('connection')).toBe('close');
    expect(closed).toBe(true);
  });

  it('a malformed chunk in the body of a request pipelined after a complete one: 200 for the first, then 400 with the id of the second', async () => {
    const ids = [`pipelined-ok-${Date.now()}`, `pipelined-chunk-${Date.now()}`];
    const { data, closed } = await sendRaw(
      `GET /healthz HTTP/1.1\r\n${HOST}X-Request-Id: ${ids[0]}\r\n\r\n` +
        `POST /payment-intent HTTP/1.1\r\n${HOST}X-Request-Id: ${ids[1]}\r\n` +
        'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    );
    const got = answers(data);
    expect(got.map((a) => [a.status, a.headers.get('x-request-id')])).toEqual([
      [200, ids[0]],
      [400, ids[1]],
    ]);
    expect((JSON.parse(got[1]!.body) as { request_id?: string }).request_id).toBe(ids[1]);
    expect(closed).toBe(true);
  });
});
