/**
 * Found by review of b86f15e (refuseConnect waits for the answers before it): the CONNECT's 405 was written with a
 * plain socket.end(). Node's HTTP server is half-open (allowHalfOpen) and, once it has handed a CONNECT's socket over,
 * reads nothing more from it and no longer times it out: a client that kept its side open after reading the 405
 * (allowHalfOpen, or one that simply never closes) kept the connection, and one of MAX_CONNECTIONS, for as long as
 * it liked. Raw answers now destroy the socket once written (endSocket). Bounded by a generous wait, not a speed goal.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
const held: Socket[] = [];

beforeAll(async () => {
  svc = await startTestService('sqlite', {
    API_AUTH: 'off',
    RATE_LIMIT_PER_MINUTE: '0',
    MAX_CONNECTIONS: '1',
  });
  await expectSlotFree(15_000);
}, 30_000);
// Each test on its own: the client then lets go itself, which frees the connection.
afterEach(async () => {
  for (const s of held.splice(0)) s.destroy();
  await expectSlotFree(5000);
});
afterAll(async () => {
  for (const s of held) s.destroy();
  await svc?.stop();
});

/** A plain request on a new connection: its status line, '' when the service closed the connection unanswered. */
function probe(): Promise<string> {
  const { port } = new URL(svc.url);
  return new Promise((resolve) => {
    const s = connect(Number(port), '127.0.0.1', () =>
      s.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'),
    );
    let data = '';
    s.on('data', (b: Buffer) => (data += b.toString('latin1')));
    s.on('close', () => resolve(data.split('\r\n')[0] ?? ''));
    s.on('error', () => {});
  });
}

/** The one connection MAX_CONNECTIONS allows is free again within `timeout` ms. */
async function expectSlotFree(timeout: number): Promise<void> {
  const deadline = Date.now() + timeout;
  let line = '';
  while (Date.now() < deadline) {
    line = await probe();
    if (line) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  expect(line).toMatch(/^HTTP\/1\.1 200 /);
}

/** Sends `bytes` on a connection that stays open on the client's side; resolves with what came once it has ended. */
function sendHoldingOpen(bytes: string): Promise<string> {
  const { port } = new URL(svc.url);
  return new Promise((resolve) => {
    const s = connect({ port: Number(port), host: '127.0.0.1', allowHalfOpen: true });
    held.push(s);
    let data = '';
    s.on('data', (b: Buffer) => (data += b.toString('latin1')));
    s.on('end', () => resolve(data));
    s.on('error', () => {});
    s.on('connect', () => s.write(bytes, 'latin1'));
  });
}

const CONNECT = 'CONNECT stripe.com:443 HTTP/1.1\r\nHost: stripe.com:443\r\n\r\n';

describe('a CONNECT answered 405 to a client that keeps its side open', () => {
  it('a lone CONNECT: the connection is let go', async () => {
    expect(await sendHoldingOpen(CONNECT)).toMatch(/^HTTP\/1\.1 405 /);
    await expectSlotFree(10_000);
  }, 20_000);

  it('a CONNECT pipelined after a request: the connection is let go', async () => {
    const data = await sendHoldingOpen(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n${CONNECT}`);
    expect(data.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 405']);
    await expectSlotFree(10_000);
  }, 20_000);

  // The control: the same client, after unparsable HTTP pipelined behind a request (endSocket: destroySoon).
  it('(passes) unparsable HTTP pipelined after a request: the connection is let go', async () => {
    const data = await sendHoldingOpen(
      'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET / HTTP/1.1\r\nX-Bad\x01: 1\r\n\r\n',
    );
    expect(data.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200']);
    await expectSlotFree(10_000);
  }, 20_000);
});
