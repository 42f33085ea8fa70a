/**
 * Hundreds of hostile requests across every operation: each gets a 4xx problem+json, never a 5xx,
 * the service keeps answering, and its memory does not keep growing.
 */
import { connect } from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let key: string;

beforeAll(async () => {
  // Limits off: one client sends hundreds of requests, over a hundred of them without a key on purpose
  // (tests/integration/auth-failure-limit.test.ts covers the limit on failed authentication).
  svc = await startTestService('sqlite', {
    API_AUTH: 'on',
    RATE_LIMIT_PER_MINUTE: '0',
    AUTH_FAILURES_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
  });
  key = (await createKey(svc.deps.store.apiKeys, { owner: 'hostile', kind: 'secret' })).key;
});
afterAll(async () => {
  await svc?.stop();
});

interface Case {
  name: string;
  method: string;
  path: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
}

const validBodies: Record<string, Record<string, unknown>> = {
  '/create-checkout-session': {
    line_items: [
      { price_data: { currency: 'usd', product_data: { name: 'T' }, unit_amount: 500 }, quantity: 1 },
    ],
    success_url: 'https://shop.example.com/ok',
    cancel_url: 'https://shop.example.com/no',
  },
  '/payment-intent': { amount: 1000, currency: 'usd' },
  '/refund': { payment_intent_id: 'pi_123', amount: 100 },
  '/refund-async': { payment_intent_id: 'pi_123', amount: 100, request_id: 'r-1' },
};

const badValues: unknown[] = [
  'x',
  -1,
  0,
  1.5,
  2 ** 63,
  -(2 ** 63),
  Number.MAX_SAFE_INTEGER + 2,
  null,
  true,
  [],
  {},
  'y'.repeat(5000),
  '\u0000',
  { $gt: 0 },
  100_000_000,
  '1e309',
];

function cases(): Case[] {
  const out: Case[] = [];
  const json = { 'content-type': 'application/json' };
  for (const [path, body] of Object.entries(validBodies)) {
    for (const field of Object.keys(body)) {
      for (const [i, v] of badValues.entries()) {
        out.push({
          name: `${path} ${field}=bad#${i}`,
          method: 'POST',
          path,
          body: JSON.stringify({ ...body, [field]: v }),
          headers: json,
        });
      }
    }
    const raw = JSON.stringify(body).slice(1);
    out.push(
      {
        name: `${path} __proto__`,
        method: 'POST',
        path,
        body: `{"__proto__":{"admin":true},${raw}`,
        headers: json,
      },
      {
        name: `${path} constructor`,
        method: 'POST',
        path,
        body: `{"constructor":{"prototype":{"x":1}},${raw}`,
        headers: json,
      },
      {
        name: `${path} metadata __proto__`,
        method: 'POST',
        path,
        body: `{"metadata":{"__proto__":"x"},${raw}`,
        headers: json,
      },
      {
        name: `${path} metadata too many`,
        method: 'POST',
        path,
        body: JSON.stringify({
          ...body,
          metadata: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, 'v'])),
        }),
        headers: json,
      },
      {
        name: `${path} unknown field`,
        method: 'POST',
        path,
        body: JSON.stringify({ ...body, admin: true }),
        headers: json,
      },
      { name: `${path} missing all`, method: 'POST', path, body: '{}', headers: json },
      { name: `${path} array body`, method: 'POST', path, body: JSON.stringify([body]), headers: json },
      {
        name: `${path} oversized`,
        method: 'POST',
        path,
        body: JSON.stringify({ ...body, pad: 'z'.repeat(40_000) }),
        headers: json,
      },
      {
        name: `${path} deeply nested`,
        method: 'POST',
        path,
        body: '['.repeat(3000) + ']'.repeat(3000),
        headers: json,
      },
    );
    for (const broken of [
      '{',
      '{"a":',
      '[',
      'null',
      '"str"',
      '123',
      '',
      'true',
      '{"a":1}}',
      '\u0000',
      '{"amount":01}',
      "{'a':1}",
      '{"a":NaN}',
    ]) {
      out.push({
        name: `${path} broken ${JSON.stringify(broken)}`,
        method: 'POST',
        path,
        body: broken,
        headers: json,
      });
    }
    for (const type of [
      'text/plain',
      'application/xml',
      'multipart/form-data; boundary=x',
      'application/x-www-form-urlencoded',
      'application/json; charset=utf-16',
      'image/png',
    ]) {
      out.push({
        name: `${path} content-type ${type}`,
        method: 'POST',
        path,
        body: JSON.stringify(body),
        headers: { 'content-type': type },
      });
    }
    // express.json inflates compressed bodies: data that is not what its encoding says, an encoding it does
    // not know, and a small gzip that inflates past the body limit.
    for (const [encoding, bytes] of [
      ['gzip', Buffer.from(JSON.stringify(body))],
      ['deflate', Buffer.from('not deflate at all')],
      ['br', Buffer.from('\xff\xff\xff\xff')],
      ['gzip', gzipSync(Buffer.from(JSON.stringify(body))).subarray(0, 12)],
      ['x-unknown', Buffer.from(JSON.stringify(body))],
      ['gzip', gzipSync(Buffer.alloc(2_000_000, 0x20))],
    ] as const) {
      out.push({
        name: `${path} content-encoding ${encoding} (${bytes.length} bytes)`,
        method: 'POST',
        path,
        body: bytes,
        headers: { ...json, 'content-encoding': encoding },
      });
    }
    out.push({
      name: `${path} bad idempotency key`,
      method: 'POST',
      path,
      body: JSON.stringify(body),
      headers: { ...json, 'idempotency-key': 'x'.repeat(300) },
    });
  }
  for (const id of [
    '..%2F..%2Fetc%2Fpasswd',
    '%00',
    'pi_%00',
    'pi_' + 'a'.repeat(300),
    'pi_%3Cscript%3E',
    '%E2%80%AE',
    'ch_123',
    '%F0%9F%92%A9',
    '%',
  ]) {
    out.push({ name: `GET payment-intent ${id}`, method: 'GET', path: `/payment-intent/${id}` });
    out.push({ name: `GET refund-status ${id}`, method: 'GET', path: `/refund-status/${id}` });
  }
  for (const q of [
    '',
    'session_id=',
    'session_id=x',
    'session_id=cs_1&session_id=cs_2',
    'session_id[]=cs_1',
    'session_id=cs_1&admin=1',
    `session_id=cs_${'b'.repeat(400)}`,
    'session_id=%00',
  ]) {
    out.push({ name: `GET checkout-session ?${q}`, method: 'GET', path: `/checkout-session?${q}` });
  }
  for (const body of ['', '{}', 'garbage', '{"id":"evt_1","type":"refund.updated","data":{"object":{}}}']) {
    out.push({
      name: `webhook unsigned ${body.slice(0, 10)}`,
      method: 'POST',
      path: '/webhook',
      body,
      headers: json,
    });
    out.push({
      name: `webhook forged ${body.slice(0, 10)}`,
      method: 'POST',
      path: '/webhook',
      body,
      headers: { ...json, 'stripe-signature': 't=1,v1=deadbeef' },
    });
  }
  out.push({
    name: 'webhook oversized',
    method: 'POST',
    path: '/webhook',
    body: 'x'.repeat(600_000),
    headers: { ...json, 'stripe-signature': 't=1,v1=00' },
  });
  for (const method of ['PUT', 'DELETE', 'PATCH'])
    out.push({ name: `${method} /refund`, method, path: '/refund' });
  out.push(
    { name: 'unknown path', method: 'GET', path: '/admin' },
    { name: 'traversal', method: 'GET', path: '/../../etc/passwd' },
  );
  return out;
}

async function send(c: Case, withKey = true): Promise<{ status: number; type: string | null }> {
  const res = await fetch(svc.url + c.path, {
    method: c.method,
    headers: { ...(withKey ? { authorization: `Bearer ${key}` } : {}), ...(c.headers ?? {}) },
    body: c.body,
  });
  await res.arrayBuffer();
  return { status: res.status, type: res.headers.get('content-type') };
}

/** Raw bytes, for what fetch refuses to send: broken header syntax, injection attempts, huge headers. */
function sendRaw(request: string): Promise<string> {
  const { port } = new URL(svc.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(request));
    let data = '';
    socket.on('data', (d) => (data += d.toString('latin1')));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
    socket.setTimeout(5000, () => {
      socket.destroy();
      resolve(data);
    });
  });
}

const rawCases = [
  'GET /refund-status/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: a\rInjected: 1\r\n\r\n',
  'GET /refund-status/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Bad\x01Header: 1\r\n\r\n',
  `GET /refund-status/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'h'.repeat(20_000)}\r\n\r\n`,
  'GET /refund status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n',
  'POST /refund HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello',
  'POST /refund HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nzzz',
  'GARBAGE\r\n\r\n',
];

describe('hostile input', () => {
  const all = cases();

  it('has at least 300 cases across every operation', () => {
    expect(all.length).toBeGreaterThanOrEqual(300);
  });

  it('every case answers 4xx problem+json, none 5xx, and memory does not keep growing', async () => {
    const gc = (() => {
      v8.setFlagsFromString('--expose-gc');
      return vm.runInNewContext('gc') as () => void;
    })();
    const heap: number[] = [];
    for (let round = 0; round < 4; round++) {
      for (const c of all) {
        const r = await send(c, c.path !== '/webhook');
        if (r.status < 400 || r.status >= 500 || !r.type?.startsWith('application/problem+json')) {
          throw new Error(`${c.name}: ${r.status} ${r.type}`);
        }
      }
      gc();
      heap.push(process.memoryUsage().heapUsed);
    }
    // Rounds after the first warm-up must not keep adding memory (4 MB of slack for allocator noise).
    expect(heap[3]! - heap[1]!).toBeLessThan(4 * 1024 * 1024);
  }, 240_000);

  it('well-formed JSON without a key is refused with 401 before its fields are validated', async () => {
    const parses = (body: string | undefined) => {
      try {
        // The strict JSON parser only takes objects and arrays; anything else is a 400 before authentication.
        const v: unknown = JSON.parse(body ?? '');
        return typeof v === 'object' && v !== null;
      } catch {
        return false;
      }
    };
    const wellFormed = all.filter(
      (x) =>
        x.method === 'POST' &&
        x.path !== '/webhook' &&
        x.headers?.['content-type'] === 'application/json' &&
        (x.body?.length ?? 0) < 16_000 &&
        !x.headers['idempotency-key'] &&
        // A compressed body is read before authentication, as a body that is not JSON is.
        !x.headers['content-encoding'] &&
        typeof x.body !== 'object' &&
        parses(x.body),
    );
    expect(wellFormed.length).toBeGreaterThan(100);
    for (const c of wellFormed) {
      const r = await send(c, false);
      if (r.status !== 401) throw new Error(`${c.name}: ${r.status}`);
    }
  });

  it('JSON nested as deep as the 16 kB limit allows answers 400 problem+json on every JSON operation', async () => {
    // V8's JSON.parse does not recurse, and every request schema is closed (metadata values are strings), so
    // the validator refuses a nested value at its first level: nothing recursive (the lone-surrogate walk,
    // the Idempotency-Key body hash, JSON.stringify) ever sees such a body.
    const limit = 16 * 1024;
    const deep = (room: number, open: string, close: string) => {
      const n = Math.floor(room / (open.length + close.length));
      return open.repeat(n) + (open === '[' ? '' : '1') + close.repeat(n);
    };
    const bodies = (path: string) => {
      const valid = JSON.stringify(validBodies[path]).slice(0, -1);
      const out: string[] = [];
      for (const [open, close] of [
        ['[', ']'],
        ['{"a":', '}'],
      ] as const) {
        const room = (prefix: string) => limit - prefix.length - 64;
        out.push(deep(limit - 16, open, close));
        for (const prefix of [`${valid},"metadata":{"k":`, `${valid},"x\\ud800":`, `${valid},"x":`]) {
          out.push(`${prefix}${deep(room(prefix), open, close)}${prefix.includes('metadata') ? '}}' : '}'}`);
        }
      }
      return out;
    };
    for (const path of Object.keys(validBodies)) {
      for (const body of bodies(path)) {
        expect(Buffer.byteLength(body)).toBeLessThanOrEqual(limit);
        const res = await fetch(svc.url + path, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${key}`,
            'content-type': 'application/json',
            'idempotency-key': `deep-${Math.random()}`,
          },
          body,
        });
        const problem = (await res.json()) as { status: number };
        if (res.status !== 400) throw new Error(`${path} ${body.slice(0, 60)}: ${res.status}`);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(problem.status).toBe(400);
      }
    }
  });

  it.each(rawCases.map((r, i) => [i, r] as const))(
    'malformed HTTP #%s answers 4xx problem+json',
    async (_i, raw) => {
      const answer = await sendRaw(raw);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(500);
      expect(answer.toLowerCase()).toContain('content-type: application/problem+json');
      expect(answer).not.toMatch(/^Injected:/m);
    },
  );

  it('the service still answers normally afterwards', async () => {
    const res = await fetch(`${svc.url}/payment-intent`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 1000, currency: 'usd' }),
    });
    expect(res.status).toBe(200);
  });
});
