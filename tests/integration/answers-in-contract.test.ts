/**
 * Every answer the service really gives is one the contract documents: status, Content-Type, body and the
 * headers a client acts on. Other teams generate clients from openapi.yaml; an error answer the contract does
 * not list reaches them as an untyped `default` (or, in some generators, as no error type at all), and a
 * Retry-After it does not name cannot be read through the generated types.
 *
 * The validator checks responses in tests only for bodies sent with res.json, which no problem+json answer
 * is, and an answer given before the validator runs (the body parser's, the timeout's) is never seen by it.
 * So each error path is driven here from the outside and its answer held against the contract.
 */
import { connect } from 'node:net';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { answerViolations, type Answer } from '../helpers/contract.js';
import { paidIntent, requestAs } from '../helpers/http.js';
import { startTestService, startTestServiceBehindProxy, type TestService } from '../helpers/service.js';
import { postgresAvailable } from '../helpers/services.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';

const pgOk = await postgresAvailable();

async function call(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const res = await fetch(url, init);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const json = (key: string) => ({ ...bearer(key), 'content-type': 'application/json' });

/** A body the operation accepts, so only the error under test decides the answer. */
const VALID_BODY: Record<string, unknown> = {
  createCheckoutSession: {
    line_items: [
      { price_data: { currency: 'usd', product_data: { name: 'T' }, unit_amount: 500 }, quantity: 1 },
    ],
    success_url: 'https://shop.example.com/ok',
    cancel_url: 'https://shop.example.com/no',
  },
  createPaymentIntent: { amount: 1000, currency: 'usd' },
  createRefund: { payment_intent_id: 'pi_123abc' },
  createRefundAsync: { payment_intent_id: 'pi_123abc' },
};
const PATH: Record<string, string> = {
  createCheckoutSession: '/create-checkout-session',
  createPaymentIntent: '/payment-intent',
  createRefund: '/refund',
  createRefundAsync: '/refund-async',
};
const JSON_POSTS = Object.keys(PATH);

describe('answers of the service with API keys on', () => {
  let svc: TestService;
  let key: string;
  beforeAll(async () => {
    svc = await startTestService('sqlite', {
      API_AUTH: 'on',
      METRICS_PUBLIC: 'false',
      REQUEST_TIMEOUT_MS: '1500',
      LOG_LEVEL: 'info',
    });
    key = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' })).key;
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('a body over the limit (413), not JSON (415) or malformed (400) on every JSON operation', async () => {
    const violations: string[] = [];
    for (const operationId of JSON_POSTS) {
      const url = svc.url + PATH[operationId]!;
      const tooLarge = await call(url, {
        method: 'POST',
        headers: json(key),
        body: JSON.stringify({ ...(VALID_BODY[operationId] as object), pad: 'x'.repeat(20_000) }),
      });
      expect(tooLarge.status).toBe(413);
      const notJson = await call(url, {
        method: 'POST',
        headers: { ...bearer(key), 'content-type': 'text/plain' },
        body: 'amount=1000',
      });
      expect(notJson.status).toBe(415);
      const malformed = await call(url, { method: 'POST', headers: json(key), body: '{"amount": ' });
      expect(malformed.status).toBe(400);
      for (const answer of [tooLarge, notJson, malformed])
        violations.push(...answerViolations(operationId, answer));
    }
    expect(violations).toEqual([]);
  });

  it('a GET sent with a body is answered as without one: no 413 or 400 for a body it does not take', async () => {
    // fetch refuses to send a body with GET; other HTTP clients do send one.
    const get = async (path: string, headers: Record<string, string>, body: string): Promise<Answer> => {
      const res = await requestAs(svc.url + path, new URL(svc.url).host, {
        method: 'GET',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        body,
      });
      const answerHeaders = new Headers();
      for (const [name, value] of Object.entries(res.headers))
        if (typeof value === 'string') answerHeaders.set(name, value);
      return { status: res.status, headers: answerHeaders, text: res.text };
    };
    const large = await get(
      '/refund-status/no-such-refund',
      json(key),
      JSON.stringify({ pad: 'x'.repeat(20_000) }),
    );
    const malformed = await get('/healthz', { 'content-type': 'application/json' }, '{"status": ');
    expect([large.status, malformed.status]).toEqual([404, 200]);
    expect([
      ...answerViolations('getRefundStatus', large),
      ...answerViolations('getHealth', malformed),
    ]).toEqual([]);
  });

  it('a body that does not arrive in time → 408 on a JSON operation', async () => {
    const { port } = new URL(svc.url);
    const raw = await new Promise<string>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1');
      let answer = '';
      socket.on('data', (d) => (answer += d.toString('latin1')));
      socket.on('close', () => resolve(answer));
      socket.on('error', () => undefined);
      socket.on('connect', () =>
        socket.write(
          `POST /refund HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\n` +
            'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"payment',
        ),
      );
    });
    const [head = '', text = ''] = raw.split('\r\n\r\n');
    const [statusLine, ...headerLines] = head.split('\r\n');
    const headers = new Headers(
      headerLines.map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
    );
    const status = Number(statusLine!.split(' ')[1]);
    expect(status).toBe(408);
    expect(answerViolations('createRefund', { status, headers, text })).toEqual([]);
  });

  it('an Idempotency-Key still running → 409 with Retry-After', async () => {
    await svc.faults({ latency_ms: 600, match: { method: 'POST', path_prefix: '/v1/payment_intents' } });
    try {
      const init = {
        method: 'POST',
        headers: { ...json(key), 'idempotency-key': 'contract-409' },
        body: JSON.stringify({ amount: 300, currency: 'usd' }),
      };
      const first = call(`${svc.url}/payment-intent`, init);
      await new Promise((r) => setTimeout(r, 150));
      const second = await call(`${svc.url}/payment-intent`, init);
      expect(second.status).toBe(409);
      expect(second.headers.get('retry-after')).toBe('1');
      expect(answerViolations('createPaymentIntent', second)).toEqual([]);
      const replayed = await (async () => {
        await first;
        return call(`${svc.url}/payment-intent`, init);
      })();
      expect(replayed.headers.get('idempotent-replayed')).toBe('true');
      expect(answerViolations('createPaymentIntent', replayed)).toEqual([]);
    } finally {
      await svc.faults({});
    }
  });

  it('a refused request replayed by its Idempotency-Key → the same 404, marked Idempotent-Replayed', async () => {
    const init = {
      method: 'POST',
      headers: { ...json(key), 'idempotency-key': 'contract-404-replay' },
      body: JSON.stringify({ payment_intent_id: 'pi_nosuchintent', amount: 500 }),
    };
    const first = await call(`${svc.url}/refund`, init);
    const replayed = await call(`${svc.url}/refund`, init);
    expect([first.status, replayed.status]).toEqual([404, 404]);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect([first, replayed].flatMap((a) => answerViolations('createRefund', a))).toEqual([]);
  });

  it('a publishable key confirming, replayed by its Idempotency-Key → the same 403, marked Idempotent-Replayed', async () => {
    const browser = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'publishable' })).key;
    const init = {
      method: 'POST',
      headers: { ...json(browser), 'idempotency-key': 'contract-403-replay' },
      body: JSON.stringify({ amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true }),
    };
    const first = await call(`${svc.url}/payment-intent`, init);
    const replayed = await call(`${svc.url}/payment-intent`, init);
    expect([first.status, replayed.status]).toEqual([403, 403]);
    expect(replayed.headers.get('idempotent-replayed')).toBe('true');
    expect([first, replayed].flatMap((a) => answerViolations('createPaymentIntent', a))).toEqual([]);
  });

  it('a refund whose Idempotency-Key was forgotten, sent with another body → 422, each time; the first body gets its refund', async () => {
    const pi = await paidIntent(svc.url, 2000, { headers: bearer(key) });
    const send = (amount: number) =>
      call(`${svc.url}/refund`, {
        method: 'POST',
        headers: { ...json(key), 'idempotency-key': 'contract-422-replay' },
        body: JSON.stringify({ payment_intent_id: pi, amount }),
      });
    expect((await send(500)).status).toBe(200);
    // The key's day is over: the refund it made is still found by the request_id derived from it.
    await svc.deps.store.idempotency.purgeExpired(new Date(Date.now() + 25 * 60 * 60 * 1000));
    const refused = await send(700);
    const again = await send(700);
    expect([refused.status, again.status]).toEqual([422, 422]);
    // Not kept under the key (it says nothing was done): the key's own first body still gets its refund.
    expect(again.headers.get('idempotent-replayed')).toBeNull();
    const first = await send(500);
    expect(first.status).toBe(200);
    expect([refused, again, first].flatMap((a) => answerViolations('createRefund', a))).toEqual([]);
  });

  it('a refund still being made under the same request_id → 409 with Retry-After', async () => {
    const pi = await paidIntent(svc.url, 2000, { headers: bearer(key) });
    await svc.faults({ latency_ms: 600, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    try {
      const init = {
        method: 'POST',
        headers: json(key),
        body: JSON.stringify({ payment_intent_id: pi, amount: 500, request_id: 'contract-409-refund' }),
      };
      const first = call(`${svc.url}/refund`, init);
      await new Promise((r) => setTimeout(r, 150));
      const second = await call(`${svc.url}/refund`, init);
      await first;
      expect(second.status).toBe(409);
      expect(second.headers.get('retry-after')).toBe('1');
      expect(answerViolations('createRefund', second)).toEqual([]);
    } finally {
      await svc.faults({});
    }
  });

  it('/metrics: no key (401), an unknown query parameter (400)', async () => {
    const anonymous = await call(`${svc.url}/metrics`);
    expect(anonymous.status).toBe(401);
    const unknownQuery = await call(`${svc.url}/metrics?format=json`, { headers: bearer(key) });
    expect(unknownQuery.status).toBe(400);
    expect([anonymous, unknownQuery].flatMap((a) => answerViolations('getMetrics', a))).toEqual([]);
  });

  it('/readyz while Stripe answers slower than the request timeout → its own answer, naming stripe', async () => {
    await svc.faults({ latency_ms: 1800, match: { method: 'GET', path_prefix: '/v1/payment_intents' } });
    try {
      const res = await call(`${svc.url}/readyz`);
      expect(res.status).toBe(200);
      expect(answerViolations('getReadiness', res)).toEqual([]);
      expect(JSON.parse(res.text)).toMatchObject({
        status: 'ok',
        degraded: ['stripe'],
        checks: { stripe: 'down' },
      });
    } finally {
      await svc.faults({});
    }
  });

  it('/webhook: a bad signature (400) and a body over its limit (413)', async () => {
    const badSignature = await call(`${svc.url}/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': 't=1,v1=00' },
      body: '{"id":"evt_1","object":"event","type":"refund.updated","data":{"object":{}}}',
    });
    expect(badSignature.status).toBe(400);
    const tooLarge = await call(`${svc.url}/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'stripe-signature': 't=1,v1=00' },
      body: JSON.stringify({ id: 'evt_1', pad: 'x'.repeat(600 * 1024) }),
    });
    expect(tooLarge.status).toBe(413);
    expect([badSignature, tooLarge].flatMap((a) => answerViolations('handleStripeWebhook', a))).toEqual([]);
  });
});

describe('answers of the rate limits', () => {
  let svc: TestService;
  let key: string;
  beforeAll(async () => {
    svc = await startTestService('sqlite', {
      API_AUTH: 'on',
      RATE_LIMIT_PER_MINUTE: '2',
      LOG_LEVEL: 'info',
    });
    key = (await createKey(svc.deps.store.apiKeys, { owner: 'tiny', kind: 'secret' })).key;
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('a key over its limit → 429 with Retry-After, on /metrics too', async () => {
    const violations: string[] = [];
    for (const [operationId, path] of [
      ['getRefundStatus', '/refund-status/nope'],
      ['getMetrics', '/metrics'],
    ] as const) {
      let last: Answer | undefined;
      for (let i = 0; i < 3; i++) last = await call(svc.url + path, { headers: bearer(key) });
      expect(last!.status).toBe(429);
      violations.push(...answerViolations(operationId, last!));
    }
    expect(violations).toEqual([]);
  });
});

describe.skipIf(!pgOk)('answers while the database does not answer (PostgreSQL)', () => {
  let proxy: TcpProxy;
  let svc: TestService;
  beforeAll(async () => {
    ({ proxy, svc } = await startTestServiceBehindProxy({
      DATABASE_TIMEOUT_MS: '400',
      REQUEST_TIMEOUT_MS: '5000',
    }));
  });
  afterAll(async () => {
    await proxy?.close();
    await svc?.stop();
  });

  it('GET /refund-status and a verified webhook → 503 store_unavailable with Retry-After; /metrics still answers', async () => {
    proxy.blackHole();
    try {
      const status = await call(`${svc.url}/refund-status/some-request`);
      expect(status.status).toBe(503);
      const payload = JSON.stringify({
        id: 'evt_contract_503',
        object: 'event',
        type: 'refund.updated',
        created: Math.floor(Date.now() / 1000),
        data: { object: { id: 're_123', object: 'refund', status: 'succeeded', payment_intent: 'pi_123' } },
      });
      const webhook = await call(`${svc.url}/webhook`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'stripe-signature': Stripe.webhooks.generateTestHeaderString({
            payload,
            secret: svc.deps.webhookSecret,
          }),
        },
        body: payload,
      });
      expect(webhook.status).toBe(503);
      // The scrape goes on: what the process counted itself, with the database's gauges marked unknown.
      const metrics = await call(`${svc.url}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.text).toContain('payments_store_up 0\n');
      expect(metrics.text).not.toMatch(/^payments_outbox_backlog /m);
      expect(metrics.text).not.toMatch(/^payments_refunds\{/m);
      expect(metrics.text).not.toMatch(/^payments_refunds_oldest_age_seconds\{/m);
      expect(metrics.text).not.toMatch(/^payments_outbox_oldest_age_seconds /m);
      expect(metrics.text).not.toMatch(/^payments_webhook_events_unapplied /m);
      expect(metrics.text).toMatch(
        /^payments_http_requests_total\{operation="getRefundStatus",status="503"\} 1$/m,
      );
      expect([
        ...answerViolations('getRefundStatus', status),
        ...answerViolations('handleStripeWebhook', webhook),
        ...answerViolations('getMetrics', metrics),
      ]).toEqual([]);
    } finally {
      proxy.forward();
    }
  });
});

describe.skipIf(!pgOk)('answers while the database does not answer, with API keys on (PostgreSQL)', () => {
  let proxy: TcpProxy;
  let svc: TestService;
  let key: string;
  beforeAll(async () => {
    ({ proxy, svc } = await startTestServiceBehindProxy({
      API_AUTH: 'on',
      METRICS_PUBLIC: 'false',
      DATABASE_TIMEOUT_MS: '400',
      REQUEST_TIMEOUT_MS: '5000',
    }));
    key = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' })).key;
  });
  afterAll(async () => {
    await proxy?.close();
    await svc?.stop();
  });

  it('a good key that cannot be checked → 503 store_unavailable with Retry-After, never 401', async () => {
    proxy.blackHole();
    let answers: [string, Answer][];
    try {
      answers = [
        ['getRefundStatus', await call(`${svc.url}/refund-status/some-request`, { headers: bearer(key) })],
        [
          'createPaymentIntent',
          await call(`${svc.url}/payment-intent`, {
            method: 'POST',
            headers: json(key),
            body: JSON.stringify(VALID_BODY.createPaymentIntent),
          }),
        ],
        ['getMetrics', await call(`${svc.url}/metrics`, { headers: bearer(key) })],
      ];
    } finally {
      proxy.forward();
    }
    for (const [operationId, answer] of answers) {
      expect(answer.status, operationId).toBe(503);
      expect(answer.headers.get('retry-after'), operationId).toBe('1');
      expect(JSON.parse(answer.text), operationId).toMatchObject({ code: 'store_unavailable' });
      expect(answerViolations(operationId, answer)).toEqual([]);
    }
    // The database back, the key works as before.
    const after = await call(`${svc.url}/refund-status/some-request`, { headers: bearer(key) });
    expect(after.status).toBe(404);
  });
});
