import { brotliCompressSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/http/app.js';
import { notImplemented, type Handlers } from '../../src/http/operations.js';
import { loadSpec } from '../../src/http/spec.js';
import { captureLogger } from '../helpers/log-capture.js';
import { getJson, postJson, serve, type Served } from '../helpers/http.js';

const SECRET_INTERNAL = 'connection to db-prod-7 failed: password=hunter2';

function handlers(): Handlers {
  return {
    createCheckoutSession: notImplemented('createCheckoutSession'),
    getCheckoutSession: notImplemented('getCheckoutSession'),
    createPaymentIntent: async ({ body, ctx }) => {
      if (body.amount === 4242) throw new Error(SECRET_INTERNAL);
      if (body.amount === 4343) ctx.log.info({ amount: body.amount }, 'handler note');
      return {
        status: 200,
        body: {
          success: true,
          clientSecret: 'pi_123_secret_abc',
          paymentIntentId: 'pi_123',
          status: 'requires_payment_method',
        },
      };
    },
    // Answers a body that breaks the contract, to prove responses are validated in tests.
    getPaymentIntent: async ({ path }) =>
      ({ status: 200, body: { id: path.payment_intent_id, amount: 'ten' } }) as never,
    createRefund: notImplemented('createRefund'),
    createRefundAsync: notImplemented('createRefundAsync'),
    getRefundStatus: notImplemented('getRefundStatus'),
    handleStripeWebhook: notImplemented('handleStripeWebhook'),
    getHealth: async () => ({ status: 200, body: { status: 'ok' } }),
    getReadiness: notImplemented('getReadiness'),
    getMetrics: notImplemented('getMetrics'),
  };
}

let served: Served;
const { logger, lines } = captureLogger();

beforeAll(async () => {
  const app = buildApp({
    config: {
      http: {
        jsonLimitBytes: 16 * 1024,
        requestTimeoutMs: 10_000,
        maxConcurrentRequests: 0,
        maxConnections: 4096,
        validateResponses: true,
        trustProxy: 0,
      },
    },
    logger,
    spec: loadSpec(),
    handlers: handlers(),
  });
  served = await serve(app);
});
afterAll(() => served.close());

function expectProblem(
  res: { status: number; headers: Headers; json: Record<string, unknown> },
  status: number,
) {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.json).toMatchObject({ type: 'about:blank', status, title: expect.any(String) });
  expect(typeof res.json.instance).toBe('string');
  expect(res.json.request_id).toBe(res.headers.get('x-request-id'));
}

describe('error path', () => {
  it('answers a valid request through its typed handler', async () => {
    const res = await postJson(`${served.url}/payment-intent`, { amount: 10000, currency: 'sgd' });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ success: true, paymentIntentId: 'pi_123' });
  });

  it('validation errors → 400 listing each bad field', async () => {
    const res = await postJson(`${served.url}/payment-intent`, {
      amount: -5,
      currency: 'S$D',
      surprise: true,
    });
    expectProblem(res, 400);
    const paths = (res.json.errors as { path: string }[]).map((e) => e.path).sort();
    expect(paths).toEqual(['/body/amount', '/body/currency', '/body/surprise']);
  });

  it('a missing required field and a wrong type are both reported', async () => {
    const res = await postJson(`${served.url}/payment-intent`, { amount: '100' });
    expectProblem(res, 400);
    const paths = (res.json.errors as { path: string }[]).map((e) => e.path);
    expect(paths).toContain('/body/currency');
    expect(paths).toContain('/body/amount');
  });

  it('bad path and query parameters → 400', async () => {
    const bad = await getJson(`${served.url}/payment-intent/not-a-pi`);
    expectProblem(bad, 400);
    expect((bad.json.errors as { path: string }[])[0]!.path).toBe('/path/payment_intent_id');
    const missing = await getJson(`${served.url}/checkout-session`);
    expectProblem(missing, 400);
    expect((missing.json.errors as { path: string }[])[0]!.path).toBe('/query/session_id');
    const encoded = await getJson(`${served.url}/payment-intent/pi_%ZZ`);
    expectProblem(encoded, 400);
    expect(encoded.json.detail).toBe('path is not valid percent-encoding');
    expect(encoded.json.errors).toEqual([{ path: '/path', message: 'is not valid percent-encoding' }]);
  });

  it('unknown route → 404', async () => {
    const res = await getJson(`${served.url}/no-such-thing`);
    expectProblem(res, 404);
  });

  it('wrong method → 405', async () => {
    const res = await fetch(`${served.url}/refund`, { method: 'DELETE' });
    expect(res.status).toBe(405);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('wrong content type → 415', async () => {
    const res = await postJson(`${served.url}/refund`, 'payment_intent_id=pi_1', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expectProblem(res, 415);
  });

  it('a multipart/form-data body → 415, as any media type the contract does not declare', async () => {
    const form = new FormData();
    form.append('payment_intent_id', 'pi_1');
    form.append('file', new Blob(['x'.repeat(1024)]), 'a.bin');
    const res = await fetch(`${served.url}/refund`, { method: 'POST', body: form });
    expectProblem(
      { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> },
      415,
    );
  });

  it('body over the limit → 413', async () => {
    const res = await postJson(`${served.url}/payment-intent`, {
      amount: 100,
      currency: 'usd',
      description: 'x'.repeat(20 * 1024),
    });
    expectProblem(res, 413);
  });

  it('malformed JSON → 400', async () => {
    const res = await postJson(`${served.url}/payment-intent`, '{"amount": 10,');
    expectProblem(res, 400);
    expect(res.json.detail).toMatch(/not valid JSON/);
  });

  it('malformed JSON → 400 saying where it goes wrong, and nothing of its text', async () => {
    // What a shell's quoting makes of a hand-written body: single quotes, a trailing comma.
    const quoted = await postJson(`${served.url}/payment-intent`, "{'amount': 100, 'currency': 'usd'}");
    expectProblem(quoted, 400);
    expect(quoted.json.detail).toBe('The request body is not valid JSON: it goes wrong at character 2.');
    const comma = await postJson(`${served.url}/payment-intent`, '{"amount": 100, "currency": "usd",}');
    expectProblem(comma, 400);
    expect(comma.json.detail).toBe('The request body is not valid JSON: it goes wrong at character 35.');
  });

  it('a body that is not what its Content-Encoding says → 400, and a gzipped body is read', async () => {
    const body = JSON.stringify({ amount: 100, currency: 'usd' });
    const broken = await postJson(`${served.url}/payment-intent`, body, { 'content-encoding': 'gzip' });
    expectProblem(broken, 400);
    expect(broken.json.detail).toMatch(/Content-Encoding/);
    const res = await fetch(`${served.url}/payment-intent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
      body: gzipSync(body),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ success: true, paymentIntentId: 'pi_123' });
  });

  it('a body labelled br that is not brotli → 400 naming Content-Encoding, and a brotli body is read', async () => {
    const body = JSON.stringify({ amount: 100, currency: 'usd' });
    const broken = await postJson(`${served.url}/payment-intent`, body, { 'content-encoding': 'br' });
    expectProblem(broken, 400);
    expect(broken.json.detail).toBe('The request body is not valid data for its Content-Encoding.');
    const res = await fetch(`${served.url}/payment-intent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'br' },
      body: brotliCompressSync(body),
    });
    expect(res.status).toBe(200);
  });

  it.each(['/payment-intent', '/webhook'])(
    'a Content-Encoding the service does not decode → 415 content_encoding_unsupported with Accept-Encoding (%s)',
    async (path) => {
      const body = JSON.stringify({ amount: 100, currency: 'usd' });
      for (const coding of ['compress', 'x-snappy', 'gzip, gzip']) {
        const res = await postJson(`${served.url}${path}`, body, { 'content-encoding': coding });
        expectProblem(res, 415);
        expect(res.json.code).toBe('content_encoding_unsupported');
        expect(res.json.detail).toBe('The request body encoding is not supported.');
        const accepted = (res.headers.get('accept-encoding') ?? '').split(/\s*,\s*/);
        expect(accepted).toEqual(expect.arrayContaining(['gzip', 'deflate', 'br']));
        expect(accepted).not.toContain(coding);
      }
    },
  );

  it('an unexpected failure → 500 that never shows the internal message, and the server stays up', async () => {
    const res = await postJson(`${served.url}/payment-intent`, { amount: 4242, currency: 'usd' });
    expectProblem(res, 500);
    expect(res.text).not.toContain('hunter2');
    expect(res.text).not.toContain('db-prod');
    const after = await postJson(`${served.url}/payment-intent`, { amount: 100, currency: 'usd' });
    expect(after.status).toBe(200);
    // The cause is in the logs for operators.
    expect(lines.some((l) => l.includes('db-prod-7'))).toBe(true);
  });

  it('a response that breaks the contract is caught (500) while validating responses', async () => {
    const res = await getJson(`${served.url}/payment-intent/pi_123`);
    expectProblem(res, 500);
    expect(res.text).not.toContain('"ten"');
  });

  it('operations not built yet answer 501 problem+json', async () => {
    const res = await postJson(`${served.url}/refund`, { payment_intent_id: 'pi_1' });
    expectProblem(res, 501);
  });
});

describe('request ids', () => {
  it('echoes a caller-supplied X-Request-Id', async () => {
    const res = await fetch(`${served.url}/no-such-thing`, { headers: { 'x-request-id': 'trace-abc.123' } });
    expect(res.headers.get('x-request-id')).toBe('trace-abc.123');
    expect(((await res.json()) as { request_id: string }).request_id).toBe('trace-abc.123');
    expect(lines.some((l) => l.includes('"id":"trace-abc.123"'))).toBe(true);
  });

  it('replaces an unsafe X-Request-Id with a fresh one', async () => {
    const res = await fetch(`${served.url}/no-such-thing`, { headers: { 'x-request-id': 'a b<script>' } });
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('docs', () => {
  it('serves the contract as JSON and YAML, and Swagger UI at /docs', async () => {
    const json = await getJson(`${served.url}/openapi.json`);
    expect(json.status).toBe(200);
    expect(json.json.openapi).toMatch(/^3\.1/);
    const json30 = await getJson(`${served.url}/openapi-3.0.json`);
    expect(json30.status).toBe(200);
    expect(json30.json.openapi).toBe('3.0.3');
    const yaml = await fetch(`${served.url}/openapi.yaml`);
    expect(yaml.status).toBe(200);
    expect(await yaml.text()).toMatch(/^openapi: 3\.1/);
    const docs = await fetch(`${served.url}/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger-ui');
  });
});

describe('security headers', () => {
  it('API answers, successes and problems alike, are uncacheable, unframeable and run nothing', async () => {
    for (const res of [
      await fetch(`${served.url}/payment-intent`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ amount: 10000, currency: 'sgd' }),
      }),
      await fetch(`${served.url}/payment-intent`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      }),
      await fetch(`${served.url}/no-such-thing`),
    ]) {
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('strict-transport-security')).toMatch(/^max-age=\d+; includeSubDomains$/);
      // helmet's page-only headers are not repeated on every JSON answer.
      expect(res.headers.get('cross-origin-opener-policy')).toBeNull();
    }
  });

  it('Swagger UI gets the browser policy its page needs', async () => {
    const docs = await fetch(`${served.url}/docs/`);
    const csp = docs.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self' 'unsafe-inline'");
    expect(docs.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(docs.headers.get('x-content-type-options')).toBe('nosniff');
    expect(docs.headers.get('cross-origin-opener-policy')).toBe('same-origin');
  });
});

describe('logging', () => {
  it("a handler's log lines carry the request's id", async () => {
    const res = await postJson(
      `${served.url}/payment-intent`,
      { amount: 4343, currency: 'sgd' },
      { 'x-request-id': 'trace-log-1' },
    );
    expect(res.status).toBe(200);
    const notes = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'handler note');
    expect(notes).toEqual([expect.objectContaining({ reqId: 'trace-log-1', amount: 4343 })]);
  });

  it('redacts authorization headers and secrets in messages', async () => {
    await fetch(`${served.url}/no-such-thing`, {
      headers: {
        authorization: 'Bearer sk_test_51SuperSecretValue',
        'stripe-signature': 't=1,v1=' + 'ab'.repeat(32),
      },
    });
    logger.info({ note: 'leak sk_live_abcdef123456 and pi_1_secret_zzz and whsec_qwerty' }, 'testing scrub');
    const all = lines.join('\n');
    expect(all).not.toContain('SuperSecretValue');
    expect(all).not.toContain('abcdef123456');
    expect(all).not.toContain('secret_zzz');
    expect(all).not.toContain('whsec_qwerty');
    expect(all).not.toContain('ab'.repeat(32));
  });
});
