/**
 * A refund's `request_id` is how it is read back: GET /refund-status/{request_id}. `.` and `..` were accepted by
 * POST /refund and POST /refund-async, yet as a path segment they are dot-segments, which clients, proxies and
 * Express remove (RFC 3986, 5.2.4): GET /refund-status/.. reaches `/`, never the refund. Both are refused at
 * acceptance now with 400 on the field, before anything is reserved; ids that merely hold dots still pass. A
 * status read for either answers a problem, and an X-Request-Id of `.` or `..` is replaced like any other the
 * service does not keep.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { sendRaw } from '../helpers/raw-http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite');
});
afterAll(async () => {
  await svc?.stop();
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A raw GET, as a client that sends its path unnormalised (fetch and curl would take the dot-segments out). */
async function rawGet(path: string): Promise<{ status: number; contentType: string; body: string }> {
  const answer = await sendRaw(
    svc.url,
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
  );
  const [head = '', body = ''] = answer.split('\r\n\r\n');
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]),
    contentType: /\r\ncontent-type: ([^\r]*)/i.exec(head)?.[1] ?? '',
    body,
  };
}

describe('request ids that are dot-segments', () => {
  it.each([
    ['/refund', '.'],
    ['/refund', '..'],
    ['/refund-async', '.'],
    ['/refund-async', '..'],
  ])('%s refuses request_id %j with 400 on the field, reserving nothing', async (path, requestId) => {
    const pi = await paidIntent(svc.url, 2500);
    const res = await postJson(`${svc.url}${path}`, {
      payment_intent_id: pi,
      amount: 1000,
      request_id: requestId,
    });
    expect(res.status, res.text).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({ status: 400, instance: path });
    expect(res.json.errors).toEqual([expect.objectContaining({ path: '/body/request_id' })]);

    // Nothing was reserved: the whole amount is still there to refund.
    const whole = await postJson(`${svc.url}/refund`, { payment_intent_id: pi, request_id: `whole-${pi}` });
    expect(whole.status, whole.text).toBe(200);
    expect(whole.json.refund).toMatchObject({ amount: 2500, status: 'succeeded' });
  });

  it('ids that only hold dots (`...`, `.a`, `..a`, `a..`) are still taken and read back', async () => {
    const pi = await paidIntent(svc.url, 4000);
    for (const requestId of ['...', `.a${pi}`, `..a${pi}`, `a${pi}..`]) {
      const res = await postJson(`${svc.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 1000,
        request_id: requestId,
      });
      expect(res.status, `${requestId}: ${res.text}`).toBe(202);
      expect(res.json.request_id).toBe(requestId);
      const status = await getJson(`${svc.url}/refund-status/${requestId}`);
      expect(status.status, `${requestId}: ${status.text}`).toBe(200);
      expect(status.json.request_id).toBe(requestId);
    }
  });

  it.each(['/refund-status/.', '/refund-status/..', '/refund-status/%2E', '/refund-status/%2e%2E'])(
    'GET %s answers 400 problem+json on the path parameter',
    async (path) => {
      const res = await rawGet(path);
      expect(res.status, res.body).toBe(400);
      expect(res.contentType).toMatch(/^application\/problem\+json/);
      const body = JSON.parse(res.body) as { errors?: { path: string }[] };
      expect(body.errors).toEqual([expect.objectContaining({ path: '/path/request_id' })]);
    },
  );

  it.each(['.', '..'])('an X-Request-Id of %j is replaced by a new UUID', async (given) => {
    const res = await postJson(
      `${svc.url}/refund`,
      { payment_intent_id: 'not-an-intent' },
      { 'x-request-id': given },
    );
    expect(res.status).toBe(400);
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(UUID);
    expect(res.json.request_id).toBe(id);
  });
});
