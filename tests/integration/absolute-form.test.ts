/**
 * Absolute-form request lines. HTTP/1.1 servers must accept `GET http://host:port/path HTTP/1.1` (RFC 9112,
 * 3.2.2), which forward proxies send. Express routes it by its path (req.url is the whole URL), but the contract's
 * validator matched the URL as sent, so every operation answered 404 "No operation at GET /healthz" while
 * /openapi.json was served. Each now routes as its path. The request's authority is the host it names: while the
 * service listens on loopback it must be a loopback name (against DNS rebinding), and a `Host` that names another
 * host than the authority is refused with 400 host_mismatch, so neither can be used to slip past the other.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSharedStripe, startTestService, type TestService } from '../helpers/service.js';
import { RABBITMQ_URL, rabbitAvailable } from '../helpers/services.js';
import { deleteEverything, topologyFor, uniquePrefix } from '../queue/support/rabbit.js';

interface RawAnswer {
  status: number;
  headers: Headers;
  json: Record<string, unknown>;
}

/** Sends `head` (a request line and its fields) on a socket of its own and reads the answer until it closes. */
function raw(url: string, head: string, body = ''): Promise<RawAnswer> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => {
      const [top = '', text = ''] = answer.split('\r\n\r\n');
      const [statusLine = '', ...lines] = top.split('\r\n');
      const headers = new Headers(
        lines.map(
          (l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()] as [string, string],
        ),
      );
      resolve({
        status: Number(statusLine.split(' ')[1]),
        headers,
        json: headers.get('content-type')?.includes('json')
          ? (JSON.parse(text) as Record<string, unknown>)
          : {},
      });
    });
    socket.on('connect', () => socket.write(`${head}Connection: close\r\n\r\n${body}`));
  });
}

describe('absolute-form request lines, on a service listening on 127.0.0.1 without API keys', () => {
  let svc: TestService;
  let authority: string;
  beforeAll(async () => {
    svc = await startTestService('sqlite', { LOG_LEVEL: 'warn' });
    authority = new URL(svc.url).host;
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('GET http://127.0.0.1:port/healthz is answered as GET /healthz', async () => {
    const res = await raw(svc.url, `GET http://${authority}/healthz HTTP/1.1\r\nHost: ${authority}\r\n`);
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: 'ok' });
  });

  it('an operation with a path parameter and a query is routed and validated as in origin-form', async () => {
    const path = '/refund-status/re_nosuchrefund';
    const origin = await raw(svc.url, `GET ${path} HTTP/1.1\r\nHost: ${authority}\r\n`);
    const absolute = await raw(svc.url, `GET http://${authority}${path} HTTP/1.1\r\nHost: ${authority}\r\n`);
    expect(absolute.status).toBe(origin.status);
    expect(absolute.json).toMatchObject({ code: origin.json.code, instance: path });
    const unknownQuery = await raw(
      svc.url,
      `GET http://${authority}/healthz?nope=1 HTTP/1.1\r\nHost: ${authority}\r\n`,
    );
    expect(unknownQuery.status).toBe(400);
    expect(unknownQuery.json).toMatchObject({ instance: '/healthz' });
  });

  it('a POST in absolute-form makes its payment intent', async () => {
    const body = JSON.stringify({ amount: 1500, currency: 'usd' });
    const res = await raw(
      svc.url,
      `POST http://${authority}/payment-intent HTTP/1.1\r\nHost: ${authority}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`,
      body,
    );
    expect(res.status).toBe(200);
    expect(res.json.paymentIntentId).toMatch(/^pi_/);
  });

  it('an authority naming another host is refused 421 host_not_allowed, whatever Host says', async () => {
    const port = new URL(svc.url).port;
    for (const head of [
      `GET http://evil.example:${port}/healthz HTTP/1.1\r\nHost: evil.example:${port}\r\n`,
      // HTTP/1.0 needs no Host: the authority is the only name the request gives.
      `GET http://evil.example:${port}/healthz HTTP/1.0\r\n`,
    ]) {
      const res = await raw(svc.url, head);
      expect(res.status).toBe(421);
      expect(res.json).toMatchObject({ code: 'host_not_allowed', instance: '/healthz' });
    }
  });

  it('a Host naming another host than the authority is refused 400 host_mismatch, both ways round', async () => {
    const port = new URL(svc.url).port;
    for (const head of [
      `GET http://evil.example:${port}/healthz HTTP/1.1\r\nHost: ${authority}\r\n`,
      `GET http://${authority}/healthz HTTP/1.1\r\nHost: evil.example:${port}\r\n`,
    ]) {
      const res = await raw(svc.url, head);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.json).toMatchObject({ status: 400, code: 'host_mismatch', instance: '/healthz' });
    }
    // Nothing was made on the way.
    expect(svc.deps.sandbox!.stats().paymentIntents).toBe(1);
  });
});

describe.skipIf(!(await rabbitAvailable()))('a worker process (ROLE=worker) on 127.0.0.1', () => {
  it('answers its health app in absolute form, and checks the host the request line names', async () => {
    const prefix = uniquePrefix('absform');
    const stripe = await startSharedStripe();
    const svc = await startTestService(
      'sqlite',
      { RABBITMQ_URL, ROLE: 'worker', ...stripe.env, API_AUTH: 'off', LOG_LEVEL: 'warn' },
      { topology: topologyFor(prefix) },
    );
    try {
      const authority = new URL(svc.url).host;
      const port = new URL(svc.url).port;
      const ok = await raw(svc.url, `GET http://${authority}/healthz HTTP/1.1\r\nHost: ${authority}\r\n`);
      expect(ok.status).toBe(200);
      const refused = await raw(svc.url, `GET http://evil.example:${port}/metrics HTTP/1.0\r\n`);
      expect(refused.status).toBe(421);
      expect(refused.json).toMatchObject({ code: 'host_not_allowed' });
    } finally {
      await svc.stop();
      await stripe.close();
      await deleteEverything(prefix);
    }
  });
});
