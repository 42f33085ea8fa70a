/**
 * A stop (SIGTERM: service.close) while a client has sent part of a request: part of its head, or its head and part
 * of its body. close() waits for server.close() with no bound, and server.close() waits for every connection that is
 * not idle. Node stops enforcing requestTimeout and headersTimeout once server.close() is called (it clears the
 * timer that checks them), so a connection that sent only part of its head is never closed: close() never ends.
 * Part of a body is answered only by the service's own REQUEST_TIMEOUT_MS (30 s), after the 25 s a stop may take.
 * Either way main.ts's shutdown timer ends the process at 25 s with exit code 1 ("shutdown took too long"), and the
 * steps after the HTTP server (waiting for webhooks, flushing the outbox, closing the broker and the store) never
 * run. Any client (a slow upload, a port scanner, one byte sent) turned every clean stop into that. A start that is
 * stopped bounds the same wait (handlerDrainMs, then closeAllConnections); close() did not.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHUTDOWN_TIMEOUT_MS } from '../../src/main.js';
import { startTestService, type TestService } from '../helpers/service.js';

function partialRequest(url: string, text: string): Promise<Socket> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.write(text, () => resolve(socket));
    });
    socket.on('error', reject);
  });
}

describe('a stop while a client has sent part of a request', () => {
  let svc: TestService;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    svc = await startTestService('sqlite', { API_AUTH: 'off' });
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await svc?.stop();
  });

  it('ends within the time a stop may take, having closed the store', async () => {
    // Part of a head, and a head with part of its body.
    sockets.push(await partialRequest(svc.url, 'POST /refund-async HTTP/1.1\r\nHost: 127.0.0.1\r\n'));
    sockets.push(
      await partialRequest(
        svc.url,
        'POST /refund-async HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"amount":',
      ),
    );
    await new Promise((r) => setTimeout(r, 200));

    const began = Date.now();
    const closing = svc.close().then(() => Date.now() - began);
    const outcome = await Promise.race([
      closing,
      new Promise<'still closing'>((r) => setTimeout(() => r('still closing'), SHUTDOWN_TIMEOUT_MS - 2_000)),
    ]);
    // main.ts exits 1 ("shutdown took too long") once SHUTDOWN_TIMEOUT_MS has passed, skipping what is left.
    expect(outcome).not.toBe('still closing');
    expect(outcome).toBeLessThan(SHUTDOWN_TIMEOUT_MS - 2_000);
    expect(svc.lines.some((l) => l.includes('"step":"dependencies closed"'))).toBe(true);
  }, 40_000);
});
