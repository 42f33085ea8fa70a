/**
 * The log line of an answer made before Express (raw-answer.ts: 'request answered before routing'): one per
 * answer, however much malformed HTTP a client keeps sending on the connection it was answered on (Node reports
 * the parser's error again for every further chunk; only the first is answered and logged), and never a header's
 * value, for the answers whose headers were read too (417, CONNECT's 405), not only for a 400.
 */
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService('sqlite', { API_AUTH: 'off', RATE_LIMIT_PER_MINUTE: '0' });
});
afterAll(async () => {
  await svc?.stop();
});

const HOST = 'Host: 127.0.0.1\r\n';

/** Writes each chunk on one connection (a pause between them), then answers all the server wrote. */
async function sendChunks(chunks: readonly string[]): Promise<string> {
  const { port } = new URL(svc.url);
  // Half-open: the client goes on writing after the server's answer and FIN, as a careless client would.
  const socket = connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true });
  socket.on('error', () => undefined);
  let data = '';
  socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
  await new Promise((resolve) => socket.once('connect', resolve));
  for (const chunk of chunks) {
    if (socket.writable) socket.write(chunk, 'latin1');
    await sleep(20);
  }
  await sleep(300);
  socket.destroy();
  return data;
}

const routedLines = (from: number) =>
  svc.lines.slice(from).filter((l) => l.includes('request answered before routing'));

describe('request answered before routing', () => {
  it('one answer and one line per connection, however much malformed HTTP follows', async () => {
    const before = svc.lines.length;
    const chunks = Array.from(
      { length: 10 },
      (_, i) => `GET /healthz HTTP/1.1\r\n${HOST}X-Bad\x01Header: ${i}\r\n\r\n`,
    );
    const answer = await sendChunks(chunks);
    expect(answer.match(/HTTP\/1\.1 400 /g)).toHaveLength(1);
    await expect.poll(() => routedLines(before).length).toBe(1);
    // Nothing more comes once the connection is gone.
    await sleep(200);
    expect(routedLines(before)).toHaveLength(1);
  });

  it.each([
    [
      '417',
      (secret: string) =>
        `POST /payment-intent HTTP/1.1\r\n${HOST}Authorization: Bearer ${secret}\r\nX-Request-Id: log-417\r\n` +
        'Content-Type: application/json\r\nContent-Length: 2\r\nExpect: 200-ok\r\n\r\n',
      'log-417',
      417,
      'POST',
    ],
    [
      "CONNECT's 405",
      (secret: string) =>
        `CONNECT stripe.com:443 HTTP/1.1\r\nHost: stripe.com:443\r\nProxy-Authorization: Basic ${secret}\r\n` +
        'X-Request-Id: log-connect\r\n\r\n',
      'log-connect',
      405,
      'CONNECT',
    ],
  ] as const)(
    '%s: its request id, status and method, and not the credentials it was sent',
    async (_name, request, id, status, method) => {
      const secret = `sk_test_${id.replace('-', '')}notlogged0123456789`;
      const before = svc.lines.length;
      const answer = await sendChunks([request(secret)]);
      expect(answer).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      await expect.poll(() => routedLines(before).length).toBe(1);
      const line = JSON.parse(routedLines(before)[0]!) as {
        reqId?: string;
        req?: { method?: string };
        res?: { statusCode?: number };
      };
      expect(line.reqId).toBe(id);
      expect(line.req?.method).toBe(method);
      expect(line.res?.statusCode).toBe(status);
      expect(svc.lines.slice(before).filter((l) => l.includes(secret))).toEqual([]);
    },
  );
});
