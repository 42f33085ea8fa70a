/**
 * REVIEW FINDING (fails on the current code): a complete POST /refund followed on its connection by a request
 * Node cannot parse (HTTP/1.1 pipelining) is run and the refund is made, but the first answer the client reads on
 * that connection, which HTTP/1.1 makes the POST's own, is the raw `400 The HTTP request is malformed.`, carrying
 * the refund's X-Request-Id as its request_id (src/service.ts answerMalformedRequest takes the in-flight
 * response's id; before e8976d5 it carried none, the misplaced 400 itself is older). A pipelined CONNECT likewise:
 * its raw 405 (refuseConnect) comes first. The client is told its refund request was refused while the money
 * moved. Expected: the refund's own answer first, or none at all (the connection closed unanswered, so the client
 * retries the same request_id); never another request's answer in its place.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { getJson, paidIntent } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService('sqlite', { API_AUTH: 'off', RATE_LIMIT_PER_MINUTE: '0' });
});
afterAll(async () => {
  await svc?.stop();
});

/** Sends raw bytes and answers everything the server wrote until it closed the connection (or 5 s passed). */
function sendRaw(bytes: string): Promise<string> {
  const { port } = new URL(svc.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(bytes, 'latin1'));
    let data = '';
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
    socket.setTimeout(5000, () => {
      socket.destroy();
      resolve(data);
    });
  });
}

const FOLLOWERS = [
  ['HTTP Node cannot parse', 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad\x01Header: 1\r\n\r\n'],
  ['CONNECT (its raw 405)', 'CONNECT stripe.com:443 HTTP/1.1\r\nHost: stripe.com:443\r\n\r\n'],
] as const;

it.each(FOLLOWERS)(
  'a refund made is never answered in its place with the raw answer to the request pipelined after it: %s',
  async (_name, follower) => {
    const pi = await paidIntent(svc.url, 5000);
    const requestId = `pipelined-${Date.now()}`;
    const body = JSON.stringify({ payment_intent_id: pi, amount: 1000, request_id: requestId });
    const answer = await sendRaw(
      `POST /refund HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: ${requestId}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}${follower}`,
    );
    // The refund was made: Stripe refunded, the ledger says so.
    await expect
      .poll(async () => (await getJson(`${svc.url}/refund-status/${requestId}`)).json?.['status'])
      .toBe('succeeded');
    // What the client reads as the POST's answer: the refund's own (200), or nothing.
    const first = /^HTTP\/1\.1 (\d{3}) /.exec(answer)?.[1] ?? null;
    expect(first === null || first === '200', `first answer: ${answer.split('\r\n')[0]}`).toBe(true);
  },
);
