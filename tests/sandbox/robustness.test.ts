import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authHeaders, request, startSandbox, stripeFor, type Sandbox } from './helpers/fixtures.js';

interface StripeErrorBody {
  error: { type: string; message: string; code?: string; param?: string };
}

function rawHttp(port: number, payload: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(payload));
    let data = '';
    socket.on('data', (chunk) => (data += chunk.toString('utf8')));
    socket.on('close', () => resolve(data));
    socket.on('error', () => resolve(data));
    socket.setTimeout(5000, () => socket.destroy());
  });
}

describe('malformed input', () => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = await startSandbox({ maxBodyBytes: 64 * 1024 });
  });
  afterAll(() => sandbox.close());

  const post = (path: string, body: string, headers: Record<string, string> = authHeaders()) =>
    request(sandbox, 'POST', path, { body, headers });

  function expectStripeError(
    res: { status: number; json: unknown },
    status: number,
  ): StripeErrorBody['error'] {
    expect(res.status).toBe(status);
    const body = res.json as StripeErrorBody;
    expect(typeof body.error.type).toBe('string');
    expect(typeof body.error.message).toBe('string');
    return body.error;
  }

  it('answers unknown routes and wrong methods with Stripe’s 404', async () => {
    const unknown = expectStripeError(
      await request(sandbox, 'GET', '/v1/unicorns', { headers: authHeaders() }),
      404,
    );
    expect(unknown.type).toBe('invalid_request_error');
    expect(unknown.message).toContain('Unrecognized request URL (GET: /v1/unicorns)');
    const method = expectStripeError(
      await request(sandbox, 'DELETE', '/v1/payment_intents', { headers: authHeaders() }),
      404,
    );
    expect(method.message).toContain('DELETE: /v1/payment_intents');
    expectStripeError(
      await request(sandbox, 'PUT', '/v1/refunds/re_1', { headers: authHeaders(), body: 'x=1' }),
      404,
    );
    expectStripeError(await request(sandbox, 'GET', '/', { headers: authHeaders() }), 404);
    expectStripeError(
      await request(sandbox, 'GET', '/v1/payment_intents/%E0%A4%A', { headers: authHeaders() }),
      404,
    );
  });

  it('rejects broken encodings, conflicting and runaway nesting', async () => {
    const cases: [string, string | undefined][] = [
      ['amount=%zz&currency=usd', undefined],
      ['amount=1000&amount[x]=1&currency=usd', 'amount'],
      ['amount[x]=1&amount=1000&currency=usd', 'amount'],
      ['a[b[c]=1', undefined],
      ['[x]=1', undefined],
      [`metadata${'[k]'.repeat(20)}=1&amount=500&currency=usd`, 'metadata'],
      ['expand[99999]=latest_charge&amount=500&currency=usd', 'expand'],
      ['amount=500&currency=usd&metadata[nested][deep]=1', 'metadata[nested]'],
      ['amount=500&currency[]=usd', 'currency'],
      ['amount=500&currency=usd&automatic_payment_methods=yes', 'automatic_payment_methods'],
      ['amount=&currency=usd', 'amount'],
    ];
    for (const [body, param] of cases) {
      const error = expectStripeError(await post('/v1/payment_intents', body), 400);
      expect(error.type).toBe('invalid_request_error');
      if (param !== undefined) expect(error.param).toBe(param);
    }
    const tooMany = Array.from({ length: 2500 }, (_, i) => `metadata[k${i}]=v`).join('&');
    expectStripeError(await post('/v1/payment_intents', `amount=500&currency=usd&${tooMany}`), 400);
  });

  it('keeps __proto__ and constructor as plain metadata keys', async () => {
    const res = await post(
      '/v1/payment_intents',
      'amount=500&currency=usd&metadata[__proto__]=x&metadata[constructor]=y',
    );
    expect(res.status).toBe(200);
    const intent = res.json as { metadata: Record<string, string> };
    expect(Object.keys(intent.metadata).sort()).toEqual(['__proto__', 'constructor']);
    const other = await stripeFor(sandbox).paymentIntents.create({ amount: 500, currency: 'usd' });
    expect(other.metadata).toEqual({});
  });

  it('rejects JSON bodies, oversized bodies and oversized idempotency keys with Stripe errors', async () => {
    const json = expectStripeError(
      await post('/v1/payment_intents', JSON.stringify({ amount: 500 }), {
        ...authHeaders(),
        'Content-Type': 'application/json',
      }),
      400,
    );
    expect(json.message).toContain('Content-Type');
    const huge = expectStripeError(
      await post('/v1/payment_intents', `amount=500&currency=usd&description=${'x'.repeat(200_000)}`),
      413,
    );
    expect(huge.type).toBe('invalid_request_error');
    expectStripeError(
      await request(sandbox, 'POST', '/v1/payment_intents', {
        body: 'amount=500&currency=usd',
        headers: { ...authHeaders(), 'Idempotency-Key': 'k'.repeat(300) },
      }),
      400,
    );
  });

  it('validates query strings too', async () => {
    const unknown = expectStripeError(
      await request(sandbox, 'GET', '/v1/refunds?colour=red', { headers: authHeaders() }),
      400,
    );
    expect(unknown.code).toBe('parameter_unknown');
    const limit = expectStripeError(
      await request(sandbox, 'GET', '/v1/refunds?limit=ten', { headers: authHeaders() }),
      400,
    );
    expect(limit.code).toBe('parameter_invalid_integer');
    const created = expectStripeError(
      await request(sandbox, 'GET', '/v1/events?created[between]=1', { headers: authHeaders() }),
      400,
    );
    expect(created.param).toBe('created[between]');
  });

  it('survives garbage on the socket and truncated requests, then still serves', async () => {
    const garbage = await rawHttp(sandbox.port, 'HELLO\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400/);
    expect(garbage).toContain('"type":"invalid_request_error"');
    expect(garbage).toMatch(/Request-Id: req_[A-Za-z0-9]+/);

    // Promises more body than it sends, then hangs up.
    await new Promise<void>((resolve) => {
      const socket = net.connect(sandbox.port, '127.0.0.1', () => {
        socket.write(
          'POST /v1/payment_intents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n' +
            'Content-Length: 1000\r\n\r\namount=5',
        );
        setTimeout(() => socket.destroy(), 20);
      });
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });

    const junk = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        post(
          i % 2 ? '/v1/refunds' : '/v1/checkout/sessions',
          `line_items[${i}][[]]=%%%&expand[]=${'['.repeat(i)}`,
        ),
      ),
    );
    for (const res of junk) expect([400, 404]).toContain(res.status);

    const page = await fetch(`${sandbox.url}/checkout/cs_test_x`, { method: 'POST', body: '%%%' });
    expect(page.status).toBe(404);

    const list = await stripeFor(sandbox).paymentIntents.list();
    expect(list.object).toBe('list');
  });
});

describe('the control API and browsers', () => {
  let sandbox: Sandbox;

  beforeAll(async () => {
    sandbox = await startSandbox();
  });
  afterAll(() => sandbox.close());

  // The control API has no key. Any web page the developer visits can send it a "simple" cross-origin POST
  // (text/plain, no preflight), or read it after rebinding a name of its own to 127.0.0.1: it could register
  // its own webhook endpoint (and receive every event, customer e-mails included), or wipe the sandbox.
  it('refuses requests a web page makes; test code and a URL typed in the address bar still get through', async () => {
    const endpoint = JSON.stringify({ url: 'https://evil.example/hook', secret: 'whsec_evil' });
    const crossSite = await request(sandbox, 'POST', '/_sandbox/webhook_endpoints', {
      body: endpoint,
      headers: {
        'content-type': 'text/plain',
        origin: 'https://evil.example',
        'sec-fetch-site': 'cross-site',
      },
    });
    expect(crossSite.status).toBe(403);
    expect((crossSite.json as StripeErrorBody).error.type).toBe('invalid_request_error');

    const rebound = await request(sandbox, 'GET', '/_sandbox/requests', {
      headers: { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors' },
    });
    expect(rebound.status).toBe(403);
    const originOnly = await request(sandbox, 'POST', '/_sandbox/reset', {
      headers: { origin: 'http://rebound.example' },
    });
    expect(originOnly.status).toBe(403);
    expect(sandbox.stats().webhooks.endpoints).toBe(0);

    const typed = await request(sandbox, 'GET', '/_sandbox/stats', {
      headers: { 'sec-fetch-site': 'none', 'sec-fetch-mode': 'navigate' },
    });
    expect(typed.status).toBe(200);
    const fromTests = await request(sandbox, 'POST', '/_sandbox/webhook_endpoints', {
      body: endpoint,
      headers: { 'content-type': 'application/json' },
    });
    expect(fromTests.status).toBe(200);
    expect(sandbox.stats().webhooks.endpoints).toBe(1);
  });
});
