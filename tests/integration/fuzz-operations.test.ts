/**
 * A deterministic fuzz of every operation in openapi.yaml: a few hundred requests each, made from a valid one by
 * a seeded, hand-written generator (broken or truncated JSON, odd Content-Types and charsets, bodies of the wrong
 * type, bad amounts, unknown fields, long strings, unicode and control characters, duplicate query parameters,
 * odd percent-encoding in path parameters, trailing slashes, unexpected methods, missing or malformed
 * Authorization). Every answer must be one the contract documents for the operation (status, Content-Type,
 * body, the headers a client acts on), every error a problem+json Problem, never a 500, never a secret or an
 * unsafe echo of the request; and the service must still answer afterwards.
 *
 * A method the contract does not list for a path (405, naming what is allowed in Allow) and a path it does not
 * list at all (404) are answered outside any operation, as are what is checked before routing (421 for a Host not
 * answered, 400 for a path's bad percent-encoding) and what Node refuses before the request is read (417, 431):
 * those are held to the Problem schema. The run takes well under a minute on an idle machine.
 */
import { Agent, request } from 'node:http';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { answerViolations, operations, spec, validate, type Answer } from '../helpers/contract.js';
import { paidIntent } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { sendRaw } from '../helpers/raw-http.js';

/** mulberry32: a small PRNG, so that every run sends the same requests. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = 0x5eed_2026;
const PER_OPERATION = 260;

/** Markup the service must never echo in a header, nor in a body a browser could take for a page. */
const MARKER = 'FUZZ<script>alert(1)</script>';

interface Req {
  method: string;
  /** Path and query as sent, already percent-encoded where wanted. */
  target: string;
  headers: Record<string, string | string[]>;
  body?: Buffer;
  /** What made it, to name a failing case. */
  label: string[];
}

interface Base {
  operationId: string;
  method: string;
  /** The path with its parameter written as `{}`, to put another value in. */
  template: string;
  param: string;
  query: [string, string][];
  body?: Record<string, unknown>;
  auth: boolean;
}

const BASES: Base[] = [
  { operationId: 'getHealth', method: 'GET', template: '/healthz', param: '', query: [], auth: false },
  { operationId: 'getReadiness', method: 'GET', template: '/readyz', param: '', query: [], auth: false },
  { operationId: 'getMetrics', method: 'GET', template: '/metrics', param: '', query: [], auth: true },
  {
    operationId: 'createCheckoutSession',
    method: 'POST',
    template: '/create-checkout-session',
    param: '',
    query: [],
    auth: true,
    body: {
      line_items: [
        { price_data: { currency: 'usd', product_data: { name: 'T' }, unit_amount: 500 }, quantity: 1 },
      ],
      success_url: 'https://shop.example.com/ok?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: 'https://shop.example.com/no',
      metadata: { order: 'o-1' },
    },
  },
  {
    operationId: 'getCheckoutSession',
    method: 'GET',
    template: '/checkout-session',
    param: '',
    query: [['session_id', 'cs_test_fuzz1']],
    auth: true,
  },
  {
    operationId: 'createPaymentIntent',
    method: 'POST',
    template: '/payment-intent',
    param: '',
    query: [],
    auth: true,
    body: { amount: 1000, currency: 'usd', metadata: { order: 'o-1' } },
  },
  {
    operationId: 'getPaymentIntent',
    method: 'GET',
    template: '/payment-intent/{}',
    param: 'pi_fuzz1',
    query: [],
    auth: true,
  },
  {
    operationId: 'createRefund',
    method: 'POST',
    template: '/refund',
    param: '',
    query: [],
    auth: true,
    body: { payment_intent_id: 'pi_fuzz1', amount: 100, reason: 'requested_by_customer' },
  },
  {
    operationId: 'createRefundAsync',
    method: 'POST',
    template: '/refund-async',
    param: '',
    query: [],
    auth: true,
    body: { payment_intent_id: 'pi_fuzz1', amount: 100, request_id: 'fuzz-r-1' },
  },
  {
    operationId: 'getRefundStatus',
    method: 'GET',
    template: '/refund-status/{}',
    param: 'fuzz-r-1',
    query: [['payment_intent_id', 'pi_fuzz1']],
    auth: true,
  },
  {
    operationId: 'handleStripeWebhook',
    method: 'POST',
    template: '/webhook',
    param: '',
    query: [],
    auth: false,
    body: { id: 'evt_fuzz', object: 'event', type: 'refund.updated', data: { object: { id: 're_1' } } },
  },
];

const BAD_VALUES: unknown[] = [
  -1,
  0,
  1.5,
  -0.0001,
  1e21,
  2 ** 53 + 2,
  -(2 ** 63),
  99_999_999_999,
  '100',
  '1e3',
  '0x10',
  ' 100',
  '',
  null,
  true,
  false,
  [],
  [1, 2],
  {},
  { $gt: 0 },
  'x'.repeat(5000),
  `${MARKER}${'y'.repeat(300)}`,
  '\u0000',
  'a\u0000b',
  '\u0007\u001b[31m',
  'line\r\nX-Injected: 1',
  '\u202egnp.exe',
  '💩'.repeat(100),
  'e\u0301',
  '\ufeffusd',
  'USD',
  'ｕｓｄ',
  MARKER,
];

/** Raw JSON text the generator can splice in where a value goes (what JSON.stringify never writes). */
const RAW_VALUES = ['NaN', '1e309', '-0', '01', '"\\ud800"', '"\\udfff x"', '"\\u0000"', '1.0', '[,]'];

const CONTENT_TYPES: (string | null)[] = [
  null,
  'text/plain',
  'application/xml',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-8',
  'application/json; charset=UTF-8',
  'application/json; charset="utf-8"',
  'application/json; charset=latin1',
  'application/json; charset=utf-16',
  'application/json; charset=utf-32le',
  'application/json; charset=',
  'application/json; charset=nonsense',
  'application/json;;',
  'application/json; foo=bar',
  'APPLICATION/JSON',
  'application/vnd.api+json',
  'application/problem+json',
  'application/json, text/plain',
  'json',
  '*/*',
  '',
];

const PATH_VALUES = [
  '%',
  '%ZZ',
  '%00',
  'pi_%00',
  '%2F',
  'pi_%2F..%2F..',
  '..%2F..%2Fetc%2Fpasswd',
  '%252F',
  '%C0%AF',
  '%FF%FE',
  '%E2%80%AE',
  '%F0%9F%92%A9',
  'pi_%F0%9F%92%A9',
  '%ED%A0%80',
  'pi_' + 'a'.repeat(300),
  'x'.repeat(2000),
  'pi_%3Cscript%3E',
  encodeURIComponent(MARKER),
  'pi_fuzz1%20',
  'pi_fuzz1;x=1',
  'stripe:re_1',
  'stripe%3Are_1',
  'PI_FUZZ1',
  '.',
  '..',
  '~',
];

const METHODS = ['HEAD', 'OPTIONS', 'TRACE', 'PATCH', 'PUT', 'DELETE', 'GET', 'POST', 'PROPFIND'];

type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

function jsonWith(r: Rand, body: Record<string, unknown>): string {
  const keys = Object.keys(body);
  const field = r() < 0.8 ? pick(r, keys) : pick(r, ['admin', '__proto__', 'constructor', 'x'.repeat(300)]);
  if (r() < 0.2) {
    // A value JSON.stringify never writes, spliced into the text.
    const rest = JSON.stringify({ ...body, [field]: undefined }).slice(1);
    return `{${JSON.stringify(field)}:${pick(r, RAW_VALUES)}${rest === '}' ? '}' : `,${rest}`}`;
  }
  if (r() < 0.15 && field === 'line_items') {
    const item = {
      price_data: { currency: 'usd', product_data: { name: 'T' }, unit_amount: 500 },
      quantity: 1,
    };
    const deep = r() < 0.5 ? 'price_data' : 'quantity';
    const bad = pick(r, BAD_VALUES);
    return JSON.stringify({ ...body, line_items: [{ ...item, [deep]: bad }] });
  }
  if (r() < 0.15 && 'metadata' in body) {
    const value = pick(r, BAD_VALUES);
    const metaKey = pick(r, ['k', '', 'k'.repeat(100), MARKER, '\u0000', 'payment_service_owner']);
    return JSON.stringify({ ...body, metadata: { [metaKey]: value } });
  }
  return JSON.stringify({ ...body, [field]: pick(r, BAD_VALUES) });
}

function mutateBody(r: Rand, base: Base, req: Req): void {
  const valid = JSON.stringify(base.body ?? {});
  const choice = Math.floor(r() * 10);
  switch (choice) {
    case 0: {
      const at = Math.floor(r() * valid.length);
      req.body = Buffer.from(valid.slice(0, at));
      req.label.push(`truncated@${at}`);
      return;
    }
    case 1: {
      const text = pick(r, ['null', '[]', '"str"', '123', 'true', '', ' ', `[${valid}]`, '{}', '{"a":1}}']);
      req.body = Buffer.from(text);
      req.label.push(`body ${JSON.stringify(text.slice(0, 20))}`);
      return;
    }
    case 2:
    case 3:
    case 4: {
      const text = jsonWith(r, base.body ?? {});
      req.body = Buffer.from(text);
      req.label.push(`field ${text.slice(0, 80)}`);
      return;
    }
    case 5: {
      // Duplicate keys, the last one wins in JSON.parse.
      const key = pick(r, Object.keys(base.body ?? { a: 1 }));
      req.body = Buffer.from(
        `{${JSON.stringify(key)}:${pick(r, ['1', '"x"', 'null', '[]'])},${valid.slice(1)}`,
      );
      req.label.push(`duplicate ${key}`);
      return;
    }
    case 6: {
      const pad = Math.floor(r() * 20_000);
      req.body = Buffer.from(JSON.stringify({ ...base.body, description: 'z'.repeat(pad) }));
      req.label.push(`pad ${pad}`);
      return;
    }
    case 7: {
      const bytes = pick(r, [
        Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(valid)]),
        Buffer.concat([
          Buffer.from(valid.slice(0, -1)),
          Buffer.from([0x2c, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]),
        ]),
        Buffer.from(valid, 'utf16le'),
        Buffer.from([0x00, 0x01, 0x02]),
        Buffer.from(`${valid}\u0000`),
      ]);
      req.body = bytes;
      req.label.push(`bytes ${bytes.subarray(0, 6).toString('hex')}`);
      return;
    }
    default: {
      const extra: Record<string, unknown> = {};
      const n = 1 + Math.floor(r() * 5);
      for (let i = 0; i < n; i++) extra[`unknown_${i}`] = pick(r, BAD_VALUES);
      req.body = Buffer.from(JSON.stringify({ ...base.body, ...extra }));
      req.label.push(`unknown fields ${n}`);
    }
  }
}

function mutateQuery(r: Rand, base: Base, req: Req): void {
  const params = [...base.query];
  const choice = Math.floor(r() * 6);
  if (choice === 0 && params.length > 0) params.push([params[0]![0], params[0]![1]]);
  else if (choice === 1 && params.length > 0) params.push([params[0]![0], 'cs_other']);
  else if (choice === 2)
    params.push([pick(r, ['admin', 'session_id[]', 'a[b]', '__proto__', 'x'.repeat(200)]), '1']);
  else if (choice === 3 && params.length > 0) params[0] = [params[0]![0], pick(r, PATH_VALUES)];
  else if (choice === 4) params.length = 0;
  else params.push([pick(r, ['', '=', '&&', '%', '%ZZ']), '']);
  const query = params.map(([k, v]) => `${k}=${v}`).join('&');
  const path = base.template.replace('{}', base.param);
  req.target = query ? `${path}?${query}` : `${path}?`;
  req.label.push(`query ${req.target.slice(0, 80)}`);
}

function mutatePath(r: Rand, base: Base, req: Req): void {
  const choice = Math.floor(r() * 4);
  const query = req.target.includes('?') ? req.target.slice(req.target.indexOf('?')) : '';
  let path = base.template.replace('{}', base.param);
  if (choice === 0 && base.template.includes('{}')) path = base.template.replace('{}', pick(r, PATH_VALUES));
  else if (choice === 1) path = `${path}/`;
  else if (choice === 2) path = pick(r, [`/${path}`, `${path}//`, `${path}/.`, `${path}/..`, `${path}%2F`]);
  else path = `${path}${pick(r, ['/x', '.json', '%20', ';a=b', '/%00'])}`;
  req.target = path + query;
  req.label.push(`path ${path.slice(0, 80)}`);
}

function mutateAuth(r: Rand, key: string, publishable: string, req: Req): void {
  const value = pick(r, [
    null,
    '',
    'Bearer',
    'Bearer ',
    `Bearer  ${key}`,
    `bearer ${key}`,
    `BEARER ${key}`,
    `Basic ${Buffer.from(`${key}:`).toString('base64')}`,
    `Token ${key}`,
    key,
    `Bearer ${key}x`,
    `Bearer ${key.slice(0, -1)}`,
    `Bearer ${key},Bearer ${key}`,
    `Bearer psk_${'0'.repeat(5000)}`,
    `Bearer ${Buffer.from('psk_💩', 'utf8').toString('latin1')}`,
    `Bearer ${publishable}`,
    `Bearer ${key}\t`,
    [`Bearer ${key}`, 'Bearer psk_other'],
  ]);
  if (value === null) delete req.headers.authorization;
  else req.headers.authorization = value;
  req.label.push(`auth ${String(value).slice(0, 30)}`);
}

function mutateHeaders(r: Rand, req: Req, host: string): void {
  const choice = Math.floor(r() * 9);
  if (choice === 0) {
    const v = pick(r, [
      '',
      ' ',
      'x'.repeat(300),
      'ü',
      '{}',
      MARKER,
      'a b',
      Buffer.from('💩').toString('latin1'),
    ]);
    req.headers['idempotency-key'] = v;
    req.label.push(`idempotency-key ${v.slice(0, 20)}`);
  } else if (choice === 1) {
    const v = pick(r, ['', 'x'.repeat(200), MARKER, '../../x', 'ok-id-1', 'é']);
    req.headers['x-request-id'] = v;
    req.label.push(`x-request-id ${v.slice(0, 20)}`);
  } else if (choice === 2) {
    const v = pick(r, ['text/html', 'application/xml', '*/*', 'application/problem+json', '']);
    req.headers.accept = v;
    req.label.push(`accept ${v}`);
  } else if (choice === 3) {
    const v = pick(r, ['gzip', 'identity', 'x-unknown', 'gzip, gzip']);
    req.headers['content-encoding'] = v;
    req.label.push(`content-encoding ${v}`);
  } else if (choice === 8) {
    if (r() < 0.5) req.headers.expect = pick(r, ['100-continue', 'nothing', '']);
    else req.headers[pick(r, ['x-large', 'cookie', 'authorization'])] = 'h'.repeat(17_000);
    req.label.push(`expect or large header`);
  } else if (choice === 4) {
    const v = pick(r, ['https://evil.example', 'null', MARKER]);
    req.headers.origin = v;
    req.label.push(`origin ${v}`);
  } else if (choice === 5) {
    // The same header twice: Node keeps the first Content-Type and joins the others with ", ".
    const name = pick(r, [
      'content-type',
      'idempotency-key',
      'x-request-id',
      'stripe-signature',
      'content-length',
    ]);
    const value = req.headers[name] ?? (name === 'content-length' ? String(req.body?.length ?? 0) : 'v-1');
    req.headers[name] = [String(value), pick(r, ['text/plain', 'v-2', '5', String(value)])];
    req.label.push(`twice ${name}`);
  } else if (choice === 6) {
    // The absolute form a forward proxy sends, naming the same host as Host or another one.
    const authority = pick(r, [host, 'evil.example', `${MARKER}`, 'user@' + host]);
    req.target = `http://${authority}${req.target}`;
    req.label.push(`absolute-form ${authority}`);
  } else {
    const v = pick(r, ['evil.example', '', 'localhost:1', MARKER, '[::1]', '127.0.0.1:99999']);
    req.headers.host = v;
    req.label.push(`host ${v}`);
  }
}

function generate(base: Base, key: string, publishable: string, host: string, r: Rand, n: number): Req[] {
  const out: Req[] = [];
  for (let i = 0; i < n; i++) {
    const path = base.template.replace('{}', base.param);
    const query = base.query.map(([k, v]) => `${k}=${v}`).join('&');
    const req: Req = {
      method: base.method,
      target: query ? `${path}?${query}` : path,
      headers: {
        ...(base.auth ? { authorization: `Bearer ${key}` } : {}),
        ...(base.body ? { 'content-type': 'application/json' } : {}),
      },
      ...(base.body ? { body: Buffer.from(JSON.stringify(base.body)) } : {}),
      label: [],
    };
    if (base.operationId === 'handleStripeWebhook') req.headers['stripe-signature'] = 't=1,v1=00';
    const mutations = 1 + Math.floor(r() * 2);
    for (let m = 0; m < mutations; m++) {
      const kind = r();
      if (base.body && kind < 0.45) mutateBody(r, base, req);
      else if (base.body && kind < 0.6) {
        const type = pick(r, CONTENT_TYPES);
        if (type === null) delete req.headers['content-type'];
        else req.headers['content-type'] = type;
        req.label.push(`content-type ${String(type)}`);
      } else if (!base.body && kind < 0.35) mutateQuery(r, base, req);
      else if (kind < 0.7) mutatePath(r, base, req);
      else if (kind < 0.78) {
        req.method = pick(r, METHODS);
        req.label.push(`method ${req.method}`);
        if (!req.body && ['POST', 'PUT', 'PATCH'].includes(req.method) && r() < 0.6) {
          req.body = Buffer.from(pick(r, ['{', '{}', 'x'.repeat(20_000), '"\\ud800"', 'null']));
          req.headers['content-type'] = pick(r, ['application/json', 'application/json; charset=latin1']);
          req.label.push(`with body ${req.body.length}`);
        }
      } else if (kind < 0.9) mutateAuth(r, key, publishable, req);
      else mutateHeaders(r, req, host);
    }
    if (base.operationId === 'handleStripeWebhook' && r() < 0.3) {
      req.headers['stripe-signature'] = pick(r, ['', 'x'.repeat(3000), 't=,v1=', MARKER, 't=1,v0=aa']);
      req.label.push('signature');
    }
    out.push(req);
  }
  return out;
}

let svc: TestService;
let key: string;
let publishable: string;
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

interface Got extends Answer {
  raw: Record<string, string | string[] | undefined>;
}

function send(url: string, req: Req): Promise<Got> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | string[]> = { ...req.headers };
    if (req.body) headers['content-length'] = String(req.body.length);
    const r = request(
      { host: '127.0.0.1', port, method: req.method, path: req.target, headers, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          const h = new Headers();
          for (const [name, value] of Object.entries(res.headers))
            if (typeof value === 'string') h.set(name, value);
          resolve({
            status: res.statusCode ?? 0,
            headers: h,
            raw: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          });
        });
        res.on('error', reject);
      },
    );
    r.on('error', reject);
    r.end(req.body);
  });
}

const CONTRACT = operations();
/** Methods the contract lists for each path template, upper-case. */
const ALLOWED = new Map<string, string[]>();
for (const o of CONTRACT) ALLOWED.set(o.path, [...(ALLOWED.get(o.path) ?? []), o.method.toUpperCase()]);

/** The contract operation a request target names, as the service should route it (exact path, no decoding). */
function routeOf(method: string, target: string): { operationId?: string; pathKnown: boolean } {
  // Express routes a path with one trailing slash as the path without it (non-strict routing).
  const path = target
    .replace(/^https?:\/\/[^/?#]*/, '')
    .split('?')[0]!
    .replace(/(.)\/$/, '$1');
  for (const o of CONTRACT) {
    const re = new RegExp(`^${o.path.replace(/\{[^}]+\}/g, '[^/]+')}$`);
    if (!re.test(path)) continue;
    const m = method === 'HEAD' ? 'GET' : method;
    const op = CONTRACT.find((c) => c.path === o.path && c.method.toUpperCase() === m);
    return { ...(op ? { operationId: op.operationId } : {}), pathKnown: true };
  }
  return { pathKnown: false };
}

function problemViolations(answer: Got, where: string): string[] {
  const type = answer.headers.get('content-type') ?? '';
  if (!type.startsWith('application/problem+json')) return [`${where}: content type ${type || '(none)'}`];
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    return [`${where}: body is not JSON`];
  }
  return validate('#/components/schemas/Problem', body).map((e) => `${where}: ${e}`);
}

/** Answered before any operation is known, on every path: the contract's description lists them. */
const BEFORE_ANY_OPERATION: ReadonlySet<number> = new Set([417, 431]);

/** Everything wrong with one answer. */
function check(req: Req, answer: Got, secrets: string[]): string[] {
  const where = `${req.method} ${req.target.slice(0, 100)} [${req.label.join('; ')}] → ${answer.status}`;
  const out: string[] = [];
  if (answer.status >= 500 && answer.status !== 503)
    out.push(`${where}: server error ${answer.text.slice(0, 200)}`);
  const route = routeOf(req.method, req.target);
  const head = req.method === 'HEAD';
  if (BEFORE_ANY_OPERATION.has(answer.status)) {
    if (!head) out.push(...problemViolations(answer, where));
  } else if (route.operationId && !head) {
    out.push(...answerViolations(route.operationId, answer).map((v) => `${where}: ${v}`));
  } else if (route.operationId && head) {
    const get = answerViolations(route.operationId, { ...answer, text: '' }).filter((v) => !/body/.test(v));
    out.push(...get.map((v) => `${where}: ${v}`));
  } else {
    // Outside the contract's operations: a method the path does not have (405, with Allow) or a path it does not
    // have (404); or what is checked before routing: the Host (421, or 400 host_mismatch for an absolute-form
    // target), the path's percent-encoding (400), a browser's preflight from an origin not in CORS_ORIGINS (403).
    const expected = [route.pathKnown ? 405 : 404, 400, 421];
    const preflight = req.method === 'OPTIONS' && req.headers.origin !== undefined && answer.status === 403;
    if (!expected.includes(answer.status) && !preflight)
      out.push(`${where}: expected ${expected.join(' or ')} outside the contract's operations`);
    if (preflight && !answer.text.includes('"code":"origin_not_allowed"'))
      out.push(`${where}: a preflight's 403 is not origin_not_allowed`);
    if (answer.status === 421 && !answer.text.includes('"code":"host_not_allowed"'))
      out.push(`${where}: a 421 is not host_not_allowed`);
    if (answer.status === 405 && !answer.headers.get('allow')) out.push(`${where}: 405 without Allow`);
    if (!head) out.push(...problemViolations(answer, where));
  }
  if (answer.status >= 400 && !head) {
    try {
      const problem = JSON.parse(answer.text) as { status?: unknown; request_id?: unknown };
      if (problem.status !== answer.status) out.push(`${where}: problem.status ${String(problem.status)}`);
      // An answer Node gives for HTTP it cannot parse comes before any request id: neither is there then.
      const header = answer.headers.get('x-request-id');
      if ((problem.request_id !== undefined || header !== null) && problem.request_id !== header)
        out.push(`${where}: request_id is not X-Request-Id`);
    } catch {
      // reported above
    }
  }
  for (const secret of secrets) {
    if (answer.text.includes(secret)) out.push(`${where}: body holds a secret`);
    for (const value of Object.values(answer.raw))
      if (String(value).includes(secret)) out.push(`${where}: a header holds a secret`);
  }
  // Every answer the app gave (it has a request id) carries the API's security headers.
  if (
    answer.headers.has('x-request-id') &&
    (answer.headers.get('x-content-type-options') !== 'nosniff' ||
      answer.headers.get('cache-control') !== 'no-store')
  )
    out.push(`${where}: without the security headers`);
  // Some answers quote what was sent (the 421 names the Host it refused, up to 100 characters): only as JSON that
  // a browser will not sniff into a page.
  if (
    answer.text.includes('<script>') &&
    !(
      /^application\/(problem\+)?json/.test(answer.headers.get('content-type') ?? '') &&
      answer.headers.get('x-content-type-options') === 'nosniff'
    )
  )
    out.push(`${where}: body echoes markup`);
  for (const [name, value] of Object.entries(answer.raw))
    if ([...String(value)].some((c) => c === '<' || c === '>' || c.charCodeAt(0) < 0x20))
      out.push(`${where}: header ${name} echoes ${String(value).slice(0, 40)}`);
  return out;
}

/** Sends `perOperation` mutated requests to each operation of `target`: how many, and every violation. */
async function fuzz(
  target: TestService,
  keys: { key: string; publishable: string },
  seed: number,
  perOperation: number,
): Promise<{ sent: number; violations: string[] }> {
  const r = prng(seed);
  const secrets = [keys.key, keys.publishable, target.deps.webhookSecret, 'sk_test_'];
  const { host } = new URL(target.url);
  const violations: string[] = [];
  let sent = 0;
  for (const base of BASES) {
    for (const req of generate(base, keys.key, keys.publishable, host, r, perOperation)) {
      const answer = await send(target.url, req);
      sent++;
      violations.push(...check(req, answer, secrets));
    }
  }
  return { sent, violations };
}

beforeAll(async () => {
  // Limits off: one client sends thousands of requests, many without a valid key on purpose.
  svc = await startTestService('sqlite', {
    API_AUTH: 'on',
    METRICS_PUBLIC: 'false',
    RATE_LIMIT_PER_MINUTE: '0',
    AUTH_FAILURES_PER_MINUTE: '0',
    // Every request's line is written, so the test can check that none holds a key or secret.
    LOG_LEVEL: 'info',
  });
  key = (await createKey(svc.deps.store.apiKeys, { owner: 'fuzz', kind: 'secret' })).key;
  publishable = (await createKey(svc.deps.store.apiKeys, { owner: 'fuzz', kind: 'publishable' })).key;
});
afterAll(async () => {
  agent.destroy();
  await svc?.stop();
});

describe('fuzzing every operation', () => {
  it('covers every operation of the contract', () => {
    expect(BASES.map((b) => b.operationId).sort()).toEqual(CONTRACT.map((o) => o.operationId).sort());
  });

  it(`answers ${PER_OPERATION} mutated requests per operation as the contract documents`, async () => {
    const { sent, violations } = await fuzz(svc, { key, publishable }, SEED, PER_OPERATION);
    expect(sent).toBe(BASES.length * PER_OPERATION);
    expect(violations.slice(0, 60)).toEqual([]);
  }, 120_000);

  it('answers requests that pass the contract with edge values (they reach the handlers and Stripe)', async () => {
    const r = prng(SEED + 1);
    const secrets = [key, publishable, svc.deps.webhookSecret, 'sk_test_'];
    const auth = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    const paid = await paidIntent(svc.url, 5000, { headers: { authorization: `Bearer ${key}` } });
    const session = await fetch(`${svc.url}/create-checkout-session`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify(BASES.find((b) => b.operationId === 'createCheckoutSession')!.body),
    });
    expect(session.status).toBe(200);
    const sessionId = ((await session.json()) as { id: string }).id;
    const amounts = [1, 49, 50, 99, 100, 1000, 5000, 5001, 99_999_999, 100_000_000, 999_999_999_999];
    const currencies = ['usd', 'jpy', 'kwd', 'bhd', 'isk', 'ugx', 'idr', 'eur', 'xxx', 'abc', 'zzz', 'krw'];
    const texts = [
      'a',
      MARKER,
      'é'.repeat(500),
      '💩'.repeat(250),
      '💩'.repeat(251),
      'x'.repeat(500),
      '\u0000',
      'a\u0000b',
      '\r\n',
      '\u202e',
      '\ud83d',
      ' ',
      '{CHECKOUT_SESSION_ID}',
    ];
    const metaKeys = ['k', 'order_id', 'a:b', 'a.b', 'K'.repeat(40), 'payment_service_owner', '-', '_'];
    const metadata = () => {
      const n = pick(r, [0, 1, 3, 49, 50]);
      const m: Record<string, string> = {};
      for (let i = 0; i < n; i++) m[n > 8 ? `k${i}` : pick(r, metaKeys)] = pick(r, texts);
      return m;
    };
    const urls = [
      'https://shop.example.com/ok',
      'http://a.b',
      'https://shop.example.com/ok?session_id={CHECKOUT_SESSION_ID}',
      'https://shop.example.com/ok?session_id=%7BCHECKOUT_SESSION_ID%7D',
      `https://shop.example.com/${'p'.repeat(2000)}`,
      'http://[::1]:99999/x',
      'https://xn--nxa.example/',
      'https://ü.example/',
      'http://user:pass@host.example/',
      `https://shop.example.com/${encodeURIComponent(MARKER)}`,
      'http://localhost/',
      'https://a/#frag',
    ];
    const emails = [
      'a@b.co',
      'x@localhost.',
      'ü@ü.de',
      'a@b.c',
      `${'a'.repeat(64)}@${'b'.repeat(180)}.com`,
      '"a"@b.co',
    ];
    const requestIds = [
      'r-1',
      'stripe:re_1',
      ':',
      '.',
      '..',
      'a'.repeat(128),
      'idem:abc',
      `rq-${Math.floor(r() * 1e6)}`,
    ];
    const pis = [paid, paid, 'pi_nosuch', `pi_${'a'.repeat(250)}`, 'pi_.', 'pi_-'];
    const bodies: { operationId: string; path: string; body: Record<string, unknown> }[] = [];
    for (let i = 0; i < 120; i++) {
      const currency = pick(r, currencies);
      bodies.push({
        operationId: 'createPaymentIntent',
        path: '/payment-intent',
        body: {
          amount: pick(r, amounts),
          currency,
          ...(r() < 0.5 ? { metadata: metadata() } : {}),
          ...(r() < 0.3 ? { description: pick(r, texts) } : {}),
          ...(r() < 0.3 ? { receipt_email: pick(r, emails) } : {}),
          ...(r() < 0.4
            ? {
                payment_method: pick(r, [
                  'pm_card_visa',
                  'pm_card_chargeDeclined',
                  'pm_card_threeDSecure2Required',
                  'pm_nosuch',
                  `pm_${'a'.repeat(250)}`,
                ]),
              }
            : {}),
          ...(r() < 0.4 ? { confirm: r() < 0.7 } : {}),
        },
      });
      const items = Array.from({ length: pick(r, [1, 2, 100]) }, () => ({
        price_data: {
          currency,
          product_data: { name: pick(r, texts), ...(r() < 0.3 ? { description: pick(r, texts) } : {}) },
          unit_amount: pick(r, amounts),
        },
        quantity: pick(r, [1, 2, 999]),
      }));
      bodies.push({
        operationId: 'createCheckoutSession',
        path: '/create-checkout-session',
        body: {
          line_items: items,
          success_url: pick(r, urls),
          cancel_url: pick(r, urls),
          ...(r() < 0.3 ? { customer_email: pick(r, emails) } : {}),
          ...(r() < 0.5 ? { metadata: metadata() } : {}),
        },
      });
      for (const [operationId, path] of [
        ['createRefund', '/refund'],
        ['createRefundAsync', '/refund-async'],
      ] as const) {
        bodies.push({
          operationId,
          path,
          body: {
            payment_intent_id: pick(r, pis),
            ...(r() < 0.7 ? { amount: pick(r, amounts) } : {}),
            ...(r() < 0.4 ? { reason: pick(r, ['duplicate', 'fraudulent', 'requested_by_customer']) } : {}),
            ...(r() < 0.6 ? { request_id: pick(r, requestIds) } : {}),
            ...(r() < 0.3 ? { metadata: metadata() } : {}),
          },
        });
      }
    }
    const violations: string[] = [];
    for (const { path, body } of bodies) {
      const headers: Record<string, string> = { ...auth };
      if (r() < 0.3) headers['idempotency-key'] = `fuzz-${Math.floor(r() * 20)}`;
      const req: Req = {
        method: 'POST',
        target: path,
        headers,
        body: Buffer.from(JSON.stringify(body)),
        label: [JSON.stringify(body).slice(0, 120), headers['idempotency-key'] ?? ''],
      };
      const got = await send(svc.url, req);
      violations.push(...check(req, got, secrets));
    }
    const gets: Req[] = [];
    for (const id of [sessionId, 'cs_nosuch', `cs_${'b'.repeat(250)}`, 'cs_.'])
      gets.push({
        method: 'GET',
        target: `/checkout-session?session_id=${id}`,
        headers: { authorization: `Bearer ${key}` },
        label: [],
      });
    for (const id of [paid, 'pi_nosuch', `pi_${'a'.repeat(250)}`, 'pi_.', 'pi_..', 'pi_%2E%2E'])
      gets.push({
        method: 'GET',
        target: `/payment-intent/${id}`,
        headers: { authorization: `Bearer ${key}` },
        label: [],
      });
    for (const id of [...requestIds, 'stripe:', 'stripe%3A', 'idem%3Aabc', '%2E', '%2E%2E'])
      gets.push({
        method: 'GET',
        target: `/refund-status/${id}`,
        headers: { authorization: `Bearer ${key}` },
        label: [],
      });
    for (const req of gets) violations.push(...check(req, await send(svc.url, req), secrets));
    // Signed webhooks with odd events: they pass the signature, so only the service's own checks stand.
    const objects = [
      {},
      { id: 're_1' },
      { id: 're_1', object: 'refund', status: 'succeeded', payment_intent: paid, amount: 5 },
      { id: 're_1', object: 'refund', status: 42, payment_intent: null, amount: '5', metadata: [] },
      { id: paid, object: 'payment_intent', metadata: { payment_service_owner: 7 } },
      { id: sessionId, object: 'checkout.session', metadata: null },
      { id: 'ch_1', object: 'charge', refunds: 'x' },
      { id: 1 },
      { id: 'x'.repeat(300) },
      { id: 'a\u0000b' },
      { id: MARKER },
      [],
    ];
    const types = [
      'refund.updated',
      'refund.created',
      'charge.refunded',
      'charge.refund.updated',
      'payment_intent.succeeded',
      'checkout.session.completed',
      'checkout.session.async_payment_failed',
      'unknown.type',
      '',
      'x'.repeat(300),
      MARKER,
    ];
    for (let i = 0; i < 120; i++) {
      const event: Record<string, unknown> = {
        id: pick(r, [`evt_fuzz_${i}`, `evt_fuzz_${i % 7}`, '', 'x'.repeat(300), 5, null, MARKER]),
        object: pick(r, ['event', 'event', 'refund', 7]),
        type: pick(r, types),
        created: pick(r, [Math.floor(Date.now() / 1000), -1, 1e20, 'now']),
        livemode: pick(r, [false, true, 'false']),
        data: pick(r, [{ object: pick(r, objects) }, { object: pick(r, objects) }, null, [], 'x', {}]),
        ...(r() < 0.2 ? { account: 'acct_other' } : {}),
        ...(r() < 0.2 ? { api_version: pick(r, [null, 7, '2020-01-01']) } : {}),
      };
      const payload =
        r() < 0.1
          ? pick(r, ['[]', 'null', '"x"', '{', '{"id":"evt_dup","id":"evt_dup2"}'])
          : JSON.stringify(event);
      const req: Req = {
        method: 'POST',
        target: '/webhook',
        headers: {
          'content-type': 'application/json',
          'stripe-signature': Stripe.webhooks.generateTestHeaderString({
            payload,
            secret: svc.deps.webhookSecret,
          }),
        },
        body: Buffer.from(payload),
        label: [payload.slice(0, 120)],
      };
      violations.push(...check(req, await send(svc.url, req), secrets));
    }
    expect(violations.slice(0, 60)).toEqual([]);
  }, 120_000);

  it('a POST with a body to a path that takes no POST is answered 405 (or 404), its body not read', async () => {
    // The body parser ran for every POST from a caller with a valid key (or on a path needing none), so such a
    // body was answered 400, 413 or 415, which no operation documents for that path, instead of 405 with Allow.
    const cases: [string, string, number, string | null][] = [
      ['/healthz', '{', 405, 'GET'],
      ['/healthz/', 'x'.repeat(20_000), 405, 'GET'],
      ['/readyz', '[', 405, 'GET'],
      ['/metrics', '{"a":', 405, 'GET'],
      ['/payment-intent/pi_fuzz1', '{', 405, 'GET'],
      ['/checkout-session?session_id=cs_x', 'x'.repeat(20_000), 405, 'GET'],
      ['/refund-status/r-1', '"\\ud800"', 405, 'GET'],
      ['/no-such-path', '{', 404, null],
      ['/refund%20', 'x'.repeat(20_000), 404, null],
    ];
    const violations: string[] = [];
    for (const [target, body, status, allow] of cases) {
      for (const type of ['application/json', 'application/json; charset=nonsense']) {
        const req: Req = {
          method: 'POST',
          target,
          headers: { authorization: `Bearer ${key}`, 'content-type': type },
          body: Buffer.from(body),
          label: [type],
        };
        const answer = await send(svc.url, req);
        const where = `POST ${target} (${type})`;
        if (answer.status !== status) violations.push(`${where}: ${answer.status}, not ${status}`);
        if (answer.headers.get('allow') !== allow)
          violations.push(`${where}: Allow ${answer.headers.get('allow')}`);
        violations.push(...problemViolations(answer, where));
      }
    }
    expect(violations).toEqual([]);
  });

  it('POST /webhook with a Content-Encoding it cannot read → 415, as the contract documents', async () => {
    const violations: string[] = [];
    for (const encoding of ['gzip, gzip', 'x-unknown', 'compress']) {
      const req: Req = {
        method: 'POST',
        target: '/webhook',
        headers: {
          'content-type': 'application/json',
          'content-encoding': encoding,
          'stripe-signature': 't=1,v1=00',
        },
        body: Buffer.from('{"id":"evt_1"}'),
        label: [encoding],
      };
      const answer = await send(svc.url, req);
      expect(answer.status, encoding).toBe(415);
      violations.push(...answerViolations('handleStripeWebhook', answer));
    }
    expect(violations).toEqual([]);
  });

  it('a HEAD request Node cannot parse is answered 400 problem+json without a body', async () => {
    // An answer to HEAD has no body (RFC 9110, 9.3.2). The problem+json written for HTTP that Node cannot parse
    // had one: a client reading the answer to its HEAD took those bytes for the start of another answer, and
    // Node's own client failed with "Parse Error: Data after `Connection: close`" instead of seeing the 400.
    for (const target of ['/refund status', 'http://a<b>/healthz', '/healthz\u0001']) {
      const raw = await sendRaw(svc.url, `HEAD ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      const [head = '', body] = raw.split('\r\n\r\n');
      expect(head, target).toMatch(/^HTTP\/1\.1 400 /);
      expect(head.toLowerCase(), target).toContain('content-type: application/problem+json');
      expect(body, target).toBe('');
    }
    // A GET that Node cannot parse still gets the problem's body.
    const answer = await sendRaw(svc.url, 'GET /refund status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(JSON.parse(answer.split('\r\n\r\n')[1]!)).toMatchObject({ status: 400, title: 'Bad Request' });
  });

  it("a problem replayed by its Idempotency-Key names the replay's request id, as its X-Request-Id does", async () => {
    // The stored problem was sent as it was first answered, request_id included, beside a new X-Request-Id: two
    // ids for one answer, though the contract says the problem's request_id is the one in X-Request-Id.
    const send = () =>
      fetch(`${svc.url}/refund`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${key}`,
          'content-type': 'application/json',
          'idempotency-key': 'fuzz-replayed-problem',
        },
        body: JSON.stringify({ payment_intent_id: 'pi_fuzznosuch', amount: 100 }),
      });
    const first = await send();
    const replayed = await send();
    expect([first.status, replayed.status]).toEqual([404, 404]);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    const [a, b] = (await Promise.all([first.json(), replayed.json()])) as Record<string, unknown>[];
    expect(a!.request_id).toBe(first.headers.get('x-request-id'));
    expect(b!.request_id).toBe(replayed.headers.get('x-request-id'));
    expect(b!.request_id).not.toBe(a!.request_id);
    const { request_id: _a, ...restA } = a!;
    const { request_id: _b, ...restB } = b!;
    expect(restB).toEqual(restA);
  });

  it('on every operation, what Node refuses before reading a request (417, 431) is a documented problem', async () => {
    // No operation is known yet when these are answered, so no operation lists them: the contract's description
    // names them for every path.
    const description = (spec.document as { info: { description: string } }).info.description;
    const violations: string[] = [];
    for (const base of BASES) {
      const path = base.template.replace('{}', base.param);
      for (const [headers, status] of [
        [{ expect: 'something-else' }, 417],
        [{ 'x-large': 'h'.repeat(20_000) }, 431],
        [{ authorization: `Bearer ${'k'.repeat(20_000)}` }, 431],
      ] as const) {
        const req: Req = { method: base.method, target: path, headers: { ...headers }, label: [] };
        const answer = await send(svc.url, req);
        const where = `${base.method} ${path} ${Object.keys(headers).join()}`;
        if (answer.status !== status) violations.push(`${where}: ${answer.status}, not ${status}`);
        violations.push(...problemViolations(answer, where));
        if (!description.includes(`\`${status}\``))
          violations.push(`${where}: ${status} is not in the contract`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('logged none of the keys and secrets it was sent, rightly or wrongly', () => {
    expect(svc.lines.length).toBeGreaterThan(BASES.length * PER_OPERATION);
    const secrets = [key, publishable, svc.deps.webhookSecret, key.slice(4, 24), publishable.slice(4, 24)];
    expect(svc.lines.filter((l) => secrets.some((x) => l.includes(x))).map((l) => l.slice(0, 300))).toEqual(
      [],
    );
  });

  it('an HTTP/1.1 request without Host → 400 problem+json, on every operation', async () => {
    // RFC 9112, 3.2: a server answers 400 to an HTTP/1.1 request without Host. Node did so itself, with an empty
    // body and none of the service's headers, before the service saw the request.
    for (const base of BASES) {
      const path = base.template.replace('{}', base.param);
      const answer = await sendRaw(
        svc.url,
        `${base.method} ${path} HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
      const [head = '', body = ''] = answer.split('\r\n\r\n');
      expect(head, path).toMatch(/^HTTP\/1\.1 400 /);
      expect(head.toLowerCase(), path).toContain('content-type: application/problem+json');
      const requestId = /^x-request-id: (.+)$/im.exec(head)?.[1];
      expect(JSON.parse(body), path).toEqual({
        type: 'about:blank',
        title: 'Bad Request',
        status: 400,
        detail: 'An HTTP/1.1 request needs a Host header.',
        instance: path.split('?')[0],
        request_id: requestId,
        code: 'host_missing',
      });
    }
    // HTTP/1.0 does not need one.
    expect(await sendRaw(svc.url, 'GET /healthz HTTP/1.0\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('CONNECT (this is no proxy) → 405 problem+json, not a connection closed without an answer', async () => {
    for (const target of ['127.0.0.1:80', 'stripe.com:443', svc.url.slice('http://'.length)]) {
      const answer = await sendRaw(svc.url, `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
      const [head = '', body = ''] = answer.split('\r\n\r\n');
      expect(head, target).toMatch(/^HTTP\/1\.1 405 /);
      expect(head.toLowerCase(), target).toContain('content-type: application/problem+json');
      expect(head, target).toMatch(/^Allow: GET, HEAD, POST$/m);
      expect(validate('#/components/schemas/Problem', JSON.parse(body))).toEqual([]);
      expect(JSON.parse(body)).toMatchObject({ status: 405 });
    }
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
  });

  it("problems answered before the service's headers were set have them too (host_mismatch, host_missing)", async () => {
    // The request target and Host are checked before the security headers are set, so those two problems, one of
    // which quotes the Host it was sent, went out without nosniff, the CSP or no-store.
    const { host } = new URL(svc.url);
    const answers = [
      await sendRaw(
        svc.url,
        `GET http://${host}/healthz HTTP/1.1\r\nHost: <b>elsewhere</b>\r\nConnection: close\r\n\r\n`,
      ),
      await sendRaw(svc.url, 'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n'),
    ];
    for (const answer of answers) {
      const head = answer.split('\r\n\r\n')[0]!;
      expect(head).toMatch(/^HTTP\/1\.1 400 /);
      expect(head).toMatch(/^X-Content-Type-Options: nosniff$/m);
      expect(head).toMatch(/^Content-Security-Policy: default-src 'none'; frame-ancestors 'none'$/m);
      expect(head).toMatch(/^Cache-Control: no-store$/m);
    }
  });

  it('still answers its probes and a valid request afterwards', async () => {
    const health = await fetch(`${svc.url}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${svc.url}/readyz`);
    expect(ready.status).toBe(200);
    const res = await fetch(`${svc.url}/payment-intent`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 1000, currency: 'usd' }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ success: true });
  });
});

describe('fuzzing every operation without API keys, listening on loopback only', () => {
  // API_AUTH=off: every caller is the anonymous owner, and a request naming a host other than a loopback name is
  // answered 421 (the DNS rebinding check), which the generator's Host and absolute-form mutations reach.
  let open: TestService;
  beforeAll(async () => {
    open = await startTestService('sqlite', {
      API_AUTH: 'off',
      RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'warn',
    });
  });
  afterAll(async () => {
    await open?.stop();
  });

  it('answers mutated requests as the contract documents, and still answers afterwards', async () => {
    const perOperation = Math.floor(PER_OPERATION / 2);
    const keys = { key: 'psk_unused0000000000000000000000', publishable: 'ppk_unused000000000000000000000' };
    const { sent, violations } = await fuzz(open, keys, SEED + 2, perOperation);
    expect(sent).toBe(BASES.length * perOperation);
    expect(violations.slice(0, 60)).toEqual([]);
    expect((await fetch(`${open.url}/healthz`)).status).toBe(200);
    const res = await fetch(`${open.url}/payment-intent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 1000, currency: 'usd' }),
    });
    expect(res.status).toBe(200);
  }, 120_000);
});
