/**
 * The pipelining code (answerMalformedRequest in src/service.ts, refuseConnect in src/http/request-target.ts,
 * afterResponsesInFlight in src/http/raw-answer.ts) waits for the answers in flight before it closes a connection
 * or answers a CONNECT. Pinned here with an answer that is slow to come (its Stripe read held up by the sandbox), so
 * that the wait really waits: the slow answer still goes out first, then the connection closes; further bad bytes
 * while waiting change nothing; and a client that goes away while the service waits leaves no connection behind and
 * no crash. MAX_CONNECTIONS=1 makes a connection left open visible: no other connection is taken until it closes.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let pi: string;

beforeAll(async () => {
  svc = await startTestService('sqlite', {
    API_AUTH: 'off',
    RATE_LIMIT_PER_MINUTE: '0',
    MAX_CONNECTIONS: '1',
  });
  // Made at Stripe directly: no connection of the test's to the service stays open in a client's pool.
  pi = (
    await svc.deps.stripe.paymentIntents.create({
      amount: 2500,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      allowed_payment_method_types: ['card'],
      confirm: true,
    })
  ).id;
  await svc.faults({ latency_ms: 800, match: { method: 'GET', path_prefix: '/v1/payment_intents' } });
  // The start's own readiness check may leave a keep-alive connection open until the server's keep-alive timeout.
  await expectConnectionFree(15_000);
}, 30_000);
afterAll(async () => {
  await svc?.faults({});
  await svc?.stop();
});

const HOST = 'Host: 127.0.0.1\r\n';
const UNPARSABLE = `GET /healthz HTTP/1.1\r\n${HOST}X-Bad\x01Header: 1\r\n\r\n`;
const CONNECT =
  'CONNECT stripe.com:443 HTTP/1.1\r\nHost: stripe.com:443\r\nX-Request-Id: edge-connect\r\n\r\n';
const slowRead = (id: string) => `GET /payment-intent/${pi} HTTP/1.1\r\n${HOST}X-Request-Id: ${id}\r\n\r\n`;

/**
 * Sends `bytes`, then each of `later` 100 ms apart; answers what the server wrote and whether it closed the
 * connection (within 5 s).
 */
function sendRaw(bytes: string, later: string[] = []): Promise<{ data: string; closed: boolean }> {
  const { port } = new URL(svc.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.write(bytes, 'latin1');
      later.forEach((more, i) =>
        setTimeout(
          () => {
            if (socket.writable) socket.write(more, 'latin1');
          },
          100 * (i + 1),
        ),
      );
    });
    let data = '';
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
    socket.on('close', () => resolve({ data, closed: true }));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // The server closing while a later write was on its way is a close, not a failure.
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') reject(err);
    });
    socket.setTimeout(5000, () => {
      socket.destroy();
      resolve({ data, closed: false });
    });
  });
}

/** Sends `bytes` and goes away at once (the service is still waiting for the slow answer). */
function sendAndLeave(bytes: string): Promise<void> {
  const { port } = new URL(svc.url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.write(bytes, 'latin1', () => setTimeout(() => socket.destroy(), 50));
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve());
  });
}

/** The status lines and request ids of the answers in `data`, in order. */
function answers(data: string): [number, string | undefined][] {
  const out: [number, string | undefined][] = [];
  let rest = data;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) throw new Error(`incomplete answer: ${JSON.stringify(rest.slice(0, 200))}`);
    const head = rest.slice(0, end);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? '0');
    out.push([
      Number(/^HTTP\/1\.1 (\d{3}) /.exec(head)?.[1]),
      /\r\nx-request-id: *([^\r]*)/i.exec(head)?.[1],
    ]);
    rest = rest.slice(end + 4 + length);
  }
  return out;
}

/** The service takes a new connection (the only one MAX_CONNECTIONS allows) and answers it, within `timeout` ms. */
async function expectConnectionFree(timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout;
  let got: [number, string | undefined][] = [];
  while (Date.now() < deadline) {
    got = answers((await sendRaw(`GET /healthz HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`)).data);
    if (got.length > 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(got.map(([status]) => status)).toEqual([200]);
}

describe('pipelined bad bytes behind an answer slow to come', () => {
  it('unparsable HTTP: the slow answer first, saying Connection: close, then the connection closes', async () => {
    const { data, closed } = await sendRaw(slowRead('edge-slow-1') + UNPARSABLE);
    expect(answers(data)).toEqual([[200, 'edge-slow-1']]);
    expect(data).toMatch(/\r\nconnection: close\r\n/i);
    expect(closed).toBe(true);
    await expectConnectionFree();
  });

  it('more bad bytes while the answer is awaited change nothing', async () => {
    const { data, closed } = await sendRaw(slowRead('edge-slow-2') + UNPARSABLE, [
      '\x01\x02garbage\r\n',
      'more\r\n\r\n',
    ]);
    expect(answers(data)).toEqual([[200, 'edge-slow-2']]);
    expect(closed).toBe(true);
    await expectConnectionFree();
  });

  it("a CONNECT: the slow answer, then the CONNECT's 405, then the connection closes", async () => {
    const { data, closed } = await sendRaw(slowRead('edge-slow-3') + CONNECT);
    expect(answers(data)).toEqual([
      [200, 'edge-slow-3'],
      [405, 'edge-connect'],
    ]);
    expect(closed).toBe(true);
    await expectConnectionFree();
  });

  it('a malformed chunk in the body of the request behind: the slow answer, then its 400', async () => {
    const { data, closed } = await sendRaw(
      slowRead('edge-slow-4') +
        `POST /payment-intent HTTP/1.1\r\n${HOST}X-Request-Id: edge-chunk\r\n` +
        'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    );
    expect(answers(data)).toEqual([
      [200, 'edge-slow-4'],
      [400, 'edge-chunk'],
    ]);
    expect(closed).toBe(true);
    await expectConnectionFree();
  });

  it.each([
    ['unparsable HTTP', UNPARSABLE],
    ['a CONNECT', CONNECT],
    [
      'a malformed chunk',
      `POST /payment-intent HTTP/1.1\r\n${HOST}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
    ],
  ])('%s, the client gone before the slow answer: no connection left, no crash', async (_what, bad) => {
    await sendAndLeave(slowRead('edge-gone') + bad);
    // The slow answer's Stripe read ends after the client has gone; its answer has nowhere to go.
    await new Promise((r) => setTimeout(r, 1200));
    await expectConnectionFree();
    expect(svc.lines.filter((l) => /uncaught|unhandled/i.test(l))).toEqual([]);
  });
});
