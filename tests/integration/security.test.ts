/**
 * Who may do what: API keys and scopes, per-owner data, publishable keys, CORS, Idempotency-Key,
 * rate limits, and that secrets never reach the logs.
 */
import { request, type IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { PUBLISHABLE_KEY_CLIENTS } from '../../src/http/security.js';
import { operations } from '../helpers/contract.js';
import { getJson, postJson, preflight as preflightTo } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
const keys: Record<string, string> = {};

beforeAll(async () => {
  svc = await startTestService('sqlite', {
    API_AUTH: 'on',
    CORS_ORIGINS: 'https://shop.example.com',
    // This file's 401s all come from one address; the limit on them has tests of its own (auth-failure-limit).
    AUTH_FAILURES_PER_MINUTE: '1000',
  });
  const repo = svc.deps.store.apiKeys;
  keys.shopAll = (await createKey(repo, { owner: 'shop', kind: 'secret' })).key;
  keys.shopReadOnly = (
    await createKey(repo, { owner: 'shop', kind: 'secret', scopes: ['payments:read', 'refunds:read'] })
  ).key;
  keys.shopBrowser = (await createKey(repo, { owner: 'shop', kind: 'publishable' })).key;
  keys.rival = (await createKey(repo, { owner: 'rival', kind: 'secret' })).key;
  const revoked = await createKey(repo, { owner: 'shop', kind: 'secret' });
  await repo.revoke(revoked.record.id);
  keys.revoked = revoked.key;
});
afterAll(async () => {
  await svc?.stop();
});

const auth = (key: string) => ({ authorization: `Bearer ${key}` });

async function paidIntent(key: string, amount = 5000): Promise<string> {
  const res = await postJson(
    `${svc.url}/payment-intent`,
    { amount, currency: 'usd', payment_method: 'pm_card_visa', confirm: true },
    auth(key),
  );
  expect(res.status).toBe(200);
  return res.json.paymentIntentId as string;
}

/** A valid request for each operation, so only authentication decides the answer. */
function requestFor(operationId: string, pi = 'pi_123abc'): { method: string; path: string; body?: unknown } {
  switch (operationId) {
    case 'createCheckoutSession':
      return {
        method: 'POST',
        path: '/create-checkout-session',
        body: {
          line_items: [
            { price_data: { currency: 'usd', product_data: { name: 'T' }, unit_amount: 500 }, quantity: 1 },
          ],
          success_url: 'https://shop.example.com/ok',
          cancel_url: 'https://shop.example.com/no',
        },
      };
    case 'getCheckoutSession':
      return { method: 'GET', path: '/checkout-session?session_id=cs_test_abc' };
    case 'createPaymentIntent':
      return { method: 'POST', path: '/payment-intent', body: { amount: 1000, currency: 'usd' } };
    case 'getPaymentIntent':
      return { method: 'GET', path: `/payment-intent/${pi}` };
    case 'createRefund':
      return { method: 'POST', path: '/refund', body: { payment_intent_id: pi } };
    case 'createRefundAsync':
      return { method: 'POST', path: '/refund-async', body: { payment_intent_id: pi } };
    case 'getRefundStatus':
      return { method: 'GET', path: '/refund-status/some-request' };
    default:
      throw new Error(operationId);
  }
}

/** A GET sending the header `name` once per value, as separate fields (fetch would join them into one). */
function getWithFields(
  url: string,
  name: string,
  values: string[],
): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false });
    req.setHeader(name, values);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function call(operationId: string, headers: Record<string, string>) {
  const r = requestFor(operationId);
  return r.method === 'GET'
    ? getJson(svc.url + r.path, headers)
    : postJson(svc.url + r.path, r.body, headers);
}

// Operations that require a key (the contract lists exactly one requirement: ApiKey with a scope).
const secured = operations()
  .filter((o) => {
    const sec = o.op.security as Record<string, string[]>[] | undefined;
    return sec?.length === 1 && (sec[0]!.ApiKey?.length ?? 0) > 0;
  })
  .map((o) => o.operationId);
const scopeOf = (id: string) =>
  ((operations().find((o) => o.operationId === id)!.op.security as Record<string, string[]>[])[0]!.ApiKey ??
    [])[0]!;

describe('authentication', () => {
  it('covers the seven API operations', () => {
    expect(secured.sort()).toEqual([
      'createCheckoutSession',
      'createPaymentIntent',
      'createRefund',
      'createRefundAsync',
      'getCheckoutSession',
      'getPaymentIntent',
      'getRefundStatus',
    ]);
  });

  it.each(secured)('%s without a key → 401 problem+json', async (operationId) => {
    const res = await call(operationId, {});
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
    expect(res.json.code).toBe('unauthenticated');
  });

  it.each(secured)('%s with a key lacking its scope → 403', async (operationId) => {
    const scope = scopeOf(operationId);
    const key = (
      await createKey(svc.deps.store.apiKeys, {
        owner: 'shop',
        kind: 'secret',
        scopes: ['payments:write', 'payments:read', 'refunds:write', 'refunds:read'].filter(
          (s) => s !== scope,
        ),
      })
    ).key;
    const res = await call(operationId, auth(key));
    expect(res.status).toBe(403);
    expect(res.json.code).toBe('insufficient_scope');
    expect(res.json.detail).toContain(scope);
  });

  it('unknown and revoked keys get the same answer', async () => {
    const unknown = await call('createPaymentIntent', auth('psk_' + 'x'.repeat(43)));
    const revoked = await call('createPaymentIntent', auth(keys.revoked!));
    const strip = (b: Record<string, unknown>) => ({ ...b, request_id: undefined });
    expect(unknown.status).toBe(401);
    expect(revoked.status).toBe(401);
    expect(strip(revoked.json)).toEqual(strip(unknown.json));
  });

  it('a key revoked while in use is refused from its next request on', async () => {
    // Each request looks its key up: nothing of a key's record is kept between requests, in any process, so
    // `npm run keys -- revoke` (another process, the same database) takes effect at once.
    const { key, record } = await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' });
    expect((await call('getRefundStatus', auth(key))).status).toBe(404);
    expect(await svc.deps.store.apiKeys.revoke(record.id)).toBe(true);
    const refused = await call('getRefundStatus', auth(key));
    expect(refused.status).toBe(401);
    expect(refused.json.code).toBe('unauthenticated');
  });

  it('the Bearer scheme is case-insensitive and may be followed by more than one space (RFC 9110)', async () => {
    for (const authorization of [
      `bearer ${keys.shopAll}`,
      `Bearer   ${keys.shopAll}`,
      `BEARER\t${keys.shopAll}`,
    ]) {
      const res = await call('getRefundStatus', { authorization });
      // Authenticated: the refund is unknown (404), not the 401 of a missing key. A tab is not a space: 401.
      expect(res.status).toBe(authorization.includes('\t') ? 401 : 404);
    }
  });

  it('a malformed Authorization header answers 401 problem+json with WWW-Authenticate, and the service stays up', async () => {
    for (const authorization of [
      'Bearer',
      'Bearer ',
      `Basic ${Buffer.from('shop:secret').toString('base64')}`,
      `Token ${keys.shopAll!}`,
      `Bearer ${keys.shopAll!} extra`,
      `Bearer ${keys.shopAll!}, Bearer ${keys.shopAll!}`,
      `Bearer ${keys.shopAll!.slice(0, -1)}\u00e9`,
      `Bearer psk_${'a'.repeat(8000)}`,
    ]) {
      const res = await getWithFields(`${svc.url}/refund-status/some-request`, 'authorization', [
        authorization,
      ]);
      expect(res.status, authorization.slice(0, 40)).toBe(401);
      expect(res.headers['content-type']).toMatch(/problem\+json/);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(JSON.parse(res.text)).toMatchObject({ status: 401, code: 'unauthenticated' });
    }
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
  });

  it('two Authorization headers are refused with 401, whichever comes first', async () => {
    // The field is not a list (RFC 9110, 11.6.2). Node keeps the first one and drops the others, while a proxy or a
    // log in front may read another: the request was answered as the first key's, whatever the second said.
    const unknown = `psk_${'x'.repeat(43)}`;
    for (const pair of [
      [`Bearer ${keys.shopAll!}`, `Bearer ${unknown}`],
      [`Bearer ${unknown}`, `Bearer ${keys.shopAll!}`],
      [`Bearer ${keys.shopAll!}`, `Bearer ${keys.shopAll!}`],
    ]) {
      const res = await getWithFields(`${svc.url}/refund-status/some-request`, 'authorization', pair);
      expect(res.status).toBe(401);
      expect(res.headers['content-type']).toMatch(/problem\+json/);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(JSON.parse(res.text)).toMatchObject({
        status: 401,
        code: 'unauthenticated',
        detail: expect.stringContaining('one Authorization header'),
      });
    }
    // One header with that key is still answered as the key's.
    expect((await call('getRefundStatus', auth(keys.shopAll!))).status).toBe(404);
  });

  it('a read-only key reads but cannot write', async () => {
    const pi = await paidIntent(keys.shopAll!);
    expect((await getJson(`${svc.url}/payment-intent/${pi}`, auth(keys.shopReadOnly!))).status).toBe(200);
    expect(
      (await postJson(`${svc.url}/refund`, { payment_intent_id: pi }, auth(keys.shopReadOnly!))).status,
    ).toBe(403);
  });

  it('/docs, /openapi.json and /webhook need no API key', async () => {
    expect((await fetch(`${svc.url}/openapi.json`)).status).toBe(200);
    expect((await fetch(`${svc.url}/docs/`)).status).toBe(200);
    const hook = await postJson(`${svc.url}/webhook`, { id: 'evt_1' });
    expect(hook.status).toBe(400); // judged by its Stripe signature instead
  });
});

describe('object-level access', () => {
  it("50 of another owner's ids answer 404, never their data", async () => {
    const ids: { kind: string; id: string }[] = [];
    for (let i = 0; i < 20; i++) ids.push({ kind: 'pi', id: await paidIntent(keys.shopAll!, 1000 + i) });
    for (let i = 0; i < 15; i++) {
      const s = await postJson(
        `${svc.url}/create-checkout-session`,
        requestFor('createCheckoutSession').body,
        auth(keys.shopAll!),
      );
      ids.push({ kind: 'cs', id: s.json.id as string });
    }
    for (let i = 0; i < 15; i++) {
      const r = await postJson(
        `${svc.url}/refund-async`,
        { payment_intent_id: ids[i]!.id, amount: 100, request_id: `shop-order-${i}` },
        auth(keys.shopAll!),
      );
      expect(r.status).toBe(202);
      ids.push({ kind: 'refund', id: `shop-order-${i}` });
    }
    expect(ids).toHaveLength(50);
    for (const { kind, id } of ids) {
      const path =
        kind === 'pi'
          ? `/payment-intent/${id}`
          : kind === 'cs'
            ? `/checkout-session?session_id=${id}`
            : `/refund-status/${id}`;
      const mine = await getJson(svc.url + path, auth(keys.shopAll!));
      expect(mine.status).toBe(200);
      const theirs = await getJson(svc.url + path, auth(keys.rival!));
      expect(theirs.status).toBe(404);
      // Only the problem fields, answered exactly as for an id that does not exist at all.
      expect(Object.keys(theirs.json).sort()).toEqual([
        'code',
        'detail',
        'instance',
        'request_id',
        'status',
        'title',
        'type',
      ]);
      const missing = await getJson(
        svc.url + path.replace(id, `${id.slice(0, 3)}doesnotexist`),
        auth(keys.rival!),
      );
      expect({ ...theirs.json, instance: 0, request_id: 0 }).toEqual({
        ...missing.json,
        instance: 0,
        request_id: 0,
      });
    }
    // Nor can they refund it.
    const steal = await postJson(`${svc.url}/refund`, { payment_intent_id: ids[0]!.id }, auth(keys.rival!));
    expect(steal.status).toBe(404);
  });

  it("another owner's payment intent is answered as an unknown one, also while Stripe fails", async () => {
    const theirs = await paidIntent(keys.shopAll!);
    const unknown = 'pi_neverexisted0000000000';
    // An id the ledger does not know is looked up at Stripe (a checkout payment whose events have not come yet):
    // with that lookup failing, an unknown id answers 503, and so must an id the ledger knows as another owner's.
    await svc.faults({ error_rate: 1, match: { method: 'GET', path_prefix: '/v1/checkout/sessions' } });
    try {
      for (const operationId of ['getPaymentIntent', 'createRefund', 'createRefundAsync']) {
        const answers = [];
        for (const pi of [theirs, unknown]) {
          const r = requestFor(operationId, pi);
          const res =
            r.method === 'GET'
              ? await getJson(svc.url + r.path, auth(keys.rival!))
              : await postJson(svc.url + r.path, r.body, auth(keys.rival!));
          answers.push({
            status: res.status,
            body: { ...res.json, instance: 0, request_id: 0 },
            retryAfter: res.headers.get('retry-after'),
          });
        }
        expect(answers[0], operationId).toEqual(answers[1]);
      }
    } finally {
      await svc.faults({});
    }
    // Nothing was refunded on the intent.
    const mine = await getJson(`${svc.url}/payment-intent/${theirs}`, auth(keys.shopAll!));
    expect(mine.json.amount_refunded).toBe(0);
  });

  it('the same request_id used by two owners names two different refunds', async () => {
    const a = await paidIntent(keys.shopAll!);
    const b = await paidIntent(keys.rival!);
    const ra = await postJson(
      `${svc.url}/refund`,
      { payment_intent_id: a, amount: 100, request_id: 'order-1' },
      auth(keys.shopAll!),
    );
    const rb = await postJson(
      `${svc.url}/refund`,
      { payment_intent_id: b, amount: 200, request_id: 'order-1' },
      auth(keys.rival!),
    );
    expect(ra.status).toBe(200);
    expect(rb.status).toBe(200);
    expect((await getJson(`${svc.url}/refund-status/order-1`, auth(keys.shopAll!))).json.amount).toBe(100);
    expect((await getJson(`${svc.url}/refund-status/order-1`, auth(keys.rival!))).json.amount).toBe(200);
  });

  it('the client secret is only in the creation answer', async () => {
    const created = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 900, currency: 'usd' },
      auth(keys.shopAll!),
    );
    expect(created.json.clientSecret).toMatch(/_secret_/);
    const read = await getJson(
      `${svc.url}/payment-intent/${created.json.paymentIntentId as string}`,
      auth(keys.shopAll!),
    );
    expect(read.text).not.toContain('secret');
  });
});

describe('publishable (browser) keys', () => {
  it('create checkout sessions and payment intents', async () => {
    expect((await call('createCheckoutSession', auth(keys.shopBrowser!))).status).toBe(200);
    expect((await call('createPaymentIntent', auth(keys.shopBrowser!))).status).toBe(200);
  });

  it('can never refund or read', async () => {
    const pi = await paidIntent(keys.shopAll!);
    for (const op of ['createRefund', 'createRefundAsync', 'getRefundStatus', 'getPaymentIntent']) {
      const r = requestFor(op, pi);
      const res =
        r.method === 'GET'
          ? await getJson(svc.url + r.path, auth(keys.shopBrowser!))
          : await postJson(svc.url + r.path, r.body, auth(keys.shopBrowser!));
      expect(res.status).toBe(403);
    }
    expect(await svc.deps.store.refunds.sumCommitted(pi)).toBe(0);
  });

  it('cannot confirm on the server: anyone could test stolen cards through the shop and read each verdict', async () => {
    const before = (await svc.deps.stripe.paymentIntents.list({ limit: 100 })).data.length;
    for (const card of ['pm_card_visa', 'pm_card_chargeDeclinedInsufficientFunds']) {
      const res = await postJson(
        `${svc.url}/payment-intent`,
        { amount: 100, currency: 'usd', payment_method: card, confirm: true },
        auth(keys.shopBrowser!),
      );
      expect(res.status).toBe(403);
      expect(res.json).toMatchObject({ code: 'insufficient_scope', param: 'confirm' });
      expect(res.json).not.toHaveProperty('decline_code');
    }
    expect((await svc.deps.stripe.paymentIntents.list({ limit: 100 })).data).toHaveLength(before);
    // Without confirming, the browser gets its client secret and confirms with Stripe.js; a secret key confirms.
    const unconfirmed = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 100, currency: 'usd', payment_method: 'pm_card_visa' },
      auth(keys.shopBrowser!),
    );
    expect(unconfirmed.status).toBe(200);
    expect(unconfirmed.json.status).toBe('requires_confirmation');
    expect(await paidIntent(keys.shopAll!, 100)).toMatch(/^pi_/);
  });

  it("send customers back only to the shop's origins (CORS_ORIGINS), never to another site", async () => {
    const session = (success_url: string, cancel_url: string, key: string) =>
      postJson(
        `${svc.url}/create-checkout-session`,
        { ...(requestFor('createCheckoutSession').body as object), success_url, cancel_url },
        auth(key),
      );
    const shop = await session(
      'https://shop.example.com/thanks?session_id={CHECKOUT_SESSION_ID}',
      'https://shop.example.com/cart',
      keys.shopBrowser!,
    );
    expect(shop.status).toBe(200);

    // Anyone can read a publishable key out of the shop's pages: with it, a genuine checkout page of the shop's
    // must not be made to send the customer on to a look-alike site.
    for (const [success, cancel, refused] of [
      ['https://evil.example.net/thanks', 'https://shop.example.com/cart', ['success_url']],
      ['https://shop.example.com/thanks', 'https://evil.example.net/', ['cancel_url']],
      [
        'https://shop.example.com.evil.example.net/',
        'http://shop.example.com/cart',
        ['success_url', 'cancel_url'],
      ],
      [
        'https://shop.example.com@evil.example.net/',
        'https://shop.example.com:8443/',
        ['success_url', 'cancel_url'],
      ],
    ] as const) {
      const res = await session(success, cancel, keys.shopBrowser!);
      expect(res.status, success).toBe(400);
      expect(res.json).toMatchObject({ code: 'redirect_not_allowed', param: refused[0] });
      expect((res.json.errors as { path: string }[]).map((e) => e.path)).toEqual(
        refused.map((p) => `/body/${p}`),
      );
    }
    // A secret key is the shop's own back end: it sends its customers wherever it likes.
    expect(
      (await session('https://partner.example.org/ok', 'https://partner.example.org/no', keys.shopAll!))
        .status,
    ).toBe(200);
  });

  it('CORS preflight is allowed only for listed origins', async () => {
    const preflight = (origin: string) => preflightTo(`${svc.url}/create-checkout-session`, origin);
    const ok = await preflight('https://shop.example.com');
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://shop.example.com');
    expect(ok.headers.get('access-control-allow-headers')).toMatch(/authorization/i);
    const evil = await preflight('https://evil.example.net');
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('a page of a listed origin can read every header the contract gives its answers (RateLimit too)', async () => {
    const origin = { origin: 'https://shop.example.com' };
    const answers = [
      await postJson(
        `${svc.url}/payment-intent`,
        { amount: 700, currency: 'usd' },
        {
          ...origin,
          ...auth(keys.shopBrowser!),
        },
      ),
      await postJson(
        `${svc.url}/payment-intent`,
        { amount: 700, currency: 'usd' },
        {
          ...origin,
          ...auth(keys.revoked!),
        },
      ),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 401]);
    const unreadable = answers.flatMap((a) => {
      const exposed = (a.headers.get('access-control-expose-headers') ?? '').toLowerCase().split(/\s*,\s*/);
      return ['x-request-id', 'ratelimit', 'ratelimit-policy', 'www-authenticate', 'retry-after']
        .filter((h) => a.headers.has(h) && !exposed.includes(h))
        .map((h) => `${a.status} ${h}`);
    });
    expect(unreadable).toEqual([]);
  });
});

describe('Idempotency-Key', () => {
  it('same key and body → the stored answer, replayed, and Stripe is asked once', async () => {
    const body = { amount: 1234, currency: 'usd', metadata: { order_id: 'idem-1' } };
    const headers = { ...auth(keys.shopAll!), 'idempotency-key': 'idem-key-1' };
    const first = await postJson(`${svc.url}/payment-intent`, body, headers);
    const second = await postJson(`${svc.url}/payment-intent`, body, headers);
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.json).toEqual(first.json);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    const intents = await svc.deps.stripe.paymentIntents.list({ limit: 100 });
    expect(intents.data.filter((p) => p.metadata?.order_id === 'idem-1')).toHaveLength(1);
  });

  it('same key, different body → 422', async () => {
    const headers = { ...auth(keys.shopAll!), 'idempotency-key': 'idem-key-2' };
    expect(
      (await postJson(`${svc.url}/payment-intent`, { amount: 100, currency: 'usd' }, headers)).status,
    ).toBe(200);
    const res = await postJson(`${svc.url}/payment-intent`, { amount: 101, currency: 'usd' }, headers);
    expect(res.status).toBe(422);
    expect(res.json.code).toBe('idempotency_key_reused');
  });

  it('same key while the first is still running → 409', async () => {
    await svc.faults({ latency_ms: 600, match: { method: 'POST', path_prefix: '/v1/payment_intents' } });
    try {
      const headers = { ...auth(keys.shopAll!), 'idempotency-key': 'idem-key-3' };
      const body = { amount: 300, currency: 'usd' };
      const slow = postJson(`${svc.url}/payment-intent`, body, headers);
      await new Promise((r) => setTimeout(r, 150));
      const second = await postJson(`${svc.url}/payment-intent`, body, headers);
      expect(second.status).toBe(409);
      expect(second.json.code).toBe('idempotency_key_in_use');
      expect((await slow).status).toBe(200);
    } finally {
      await svc.faults({});
    }
  });

  it('keys are per owner: another owner may use the same key', async () => {
    const body = { amount: 700, currency: 'usd' };
    const a = await postJson(`${svc.url}/payment-intent`, body, {
      ...auth(keys.shopAll!),
      'idempotency-key': 'shared',
    });
    const b = await postJson(`${svc.url}/payment-intent`, body, {
      ...auth(keys.rival!),
      'idempotency-key': 'shared',
    });
    expect(b.headers.get('idempotent-replayed')).toBeNull();
    expect(b.json.paymentIntentId).not.toBe(a.json.paymentIntentId);
  });

  it('a refund replayed by Idempotency-Key refunds once', async () => {
    const pi = await paidIntent(keys.shopAll!, 2000);
    const headers = { ...auth(keys.shopAll!), 'idempotency-key': 'refund-once' };
    const [x, y] = await Promise.all([
      postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 500 }, headers),
      new Promise((r) => setTimeout(r, 300)).then(() =>
        postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 500 }, headers),
      ),
    ]);
    expect(x.status).toBe(200);
    expect(y.status).toBe(200);
    expect(y.json).toEqual(x.json);
    expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data).toHaveLength(1);
  });
});

describe('rate limiting', () => {
  it('answers 429 with Retry-After once a key exceeds its limit', async () => {
    const limited = await startTestService('sqlite', { API_AUTH: 'on', RATE_LIMIT_PER_MINUTE: '5' });
    try {
      const key = (await createKey(limited.deps.store.apiKeys, { owner: 'tiny', kind: 'secret' })).key;
      const other = (await createKey(limited.deps.store.apiKeys, { owner: 'other', kind: 'secret' })).key;
      const statuses: number[] = [];
      let last;
      for (let i = 0; i < 7; i++) {
        last = await getJson(`${limited.url}/refund-status/nope`, auth(key));
        statuses.push(last.status);
      }
      expect(statuses.slice(0, 5)).toEqual([404, 404, 404, 404, 404]);
      expect(statuses[5]).toBe(429);
      expect(last!.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(last!.json.code).toBe('rate_limited');
      // Limits are per key: another caller is unaffected.
      expect((await getJson(`${limited.url}/refund-status/nope`, auth(other))).status).toBe(404);
    } finally {
      await limited.stop();
    }
  });

  it("a publishable key's limit is per client address, within a total: one client cannot lock the shop's customers out", async () => {
    const limited = await startTestService('sqlite', {
      API_AUTH: 'on',
      RATE_LIMIT_PER_MINUTE: '5',
      TRUST_PROXY: 'true',
    });
    try {
      const browser = (await createKey(limited.deps.store.apiKeys, { owner: 'shop', kind: 'publishable' }))
        .key;
      const intent = (client: string) =>
        postJson(
          `${limited.url}/payment-intent`,
          { amount: 1000, currency: 'usd' },
          { ...auth(browser), 'x-forwarded-for': client },
        );
      // Anyone can read the key out of the shop's pages and spend its limit from one address.
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await intent('203.0.113.7')).status);
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      // A customer elsewhere still pays with the same key.
      const customer = await intent('198.51.100.9');
      expect(customer.status).toBe(200);
      expect(customer.json.clientSecret).toMatch(/_secret_/);
      // All its clients together spend at most PUBLISHABLE_KEY_CLIENTS budgets (each request is a call to Stripe).
      const spent: number[] = [];
      for (const client of ['198.51.100.9', '198.51.100.10', '198.51.100.11', '198.51.100.12']) {
        const left = client === '198.51.100.9' ? 4 : 5;
        for (let i = 0; i < left; i++) spent.push((await intent(client)).status);
      }
      expect(spent).toEqual(Array(19).fill(200));
      expect(5 + 1 + spent.length).toBe(5 * PUBLISHABLE_KEY_CLIENTS);
      const over = await intent('198.51.100.13');
      expect(over.status).toBe(429);
      expect(over.json.code).toBe('rate_limited');
    } finally {
      await limited.stop();
    }
  });
});

describe('secrets stay out of the logs', () => {
  it('no API key, Stripe key, client secret or signature appears in captured logs', async () => {
    const created = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 4321, currency: 'usd' },
      auth(keys.shopAll!),
    );
    const clientSecret = created.json.clientSecret as string;
    // Whoever holds the same public ppk_ key and an Idempotency-Key gets that request's answer replayed, client
    // secret included: the header's value is a credential of sorts and stays out of the logs.
    await postJson(
      `${svc.url}/payment-intent`,
      { amount: 1234, currency: 'usd' },
      {
        ...auth(keys.shopBrowser!),
        'idempotency-key': 'idem-browser-7f3a9c2e',
      },
    );
    await postJson(
      `${svc.url}/webhook`,
      { id: 'evt_x' },
      { 'stripe-signature': 't=1,v1=' + 'ab'.repeat(32) },
    );
    await call('createPaymentIntent', auth(keys.revoked!));
    const logs = svc.lines.join('\n');
    expect(logs.length).toBeGreaterThan(1000);
    for (const secret of Object.values(keys)) expect(logs).not.toContain(secret.slice(4));
    expect(logs).not.toContain(clientSecret);
    expect(logs).not.toContain(clientSecret.split('_secret_')[1]);
    expect(logs).not.toContain('ab'.repeat(32));
    expect(logs).not.toMatch(/sk_test_embedded[0-9a-f]{8}/);
    expect(logs).not.toMatch(/whsec_[0-9a-f]{8}/);
    expect(logs).not.toContain('idem-browser-7f3a9c2e');
  });
});

describe('client secrets stay out of RabbitMQ messages', () => {
  it('events published to stripe.events carry no client secret (Stripe puts it in payment_intent.* events)', async () => {
    const queue = 'security.events-subscriber';
    await svc.deps.broker.bind(queue, svc.deps.topology.events, '#');
    const published: unknown[] = [];
    const consumer = await svc.deps.broker.consume(
      queue,
      async (d) => {
        published.push(d.body);
        return { kind: 'ack' };
      },
      { prefetch: 10, maxAttempts: 1 },
    );
    try {
      const created = await postJson(
        `${svc.url}/payment-intent`,
        { amount: 2500, currency: 'usd', payment_method: 'pm_card_visa', confirm: true },
        auth(keys.shopAll!),
      );
      const { paymentIntentId, clientSecret } = created.json as {
        paymentIntentId: string;
        clientSecret: string;
      };
      const about = (e: unknown) =>
        (e as { data: { object: { id: string } } }).data.object.id === paymentIntentId;
      // The embedded sandbox delivers payment_intent.created and .succeeded for it, signed, as Stripe would.
      await eventually(
        async () => published.filter(about).length,
        (n) => n >= 2,
      );
      expect(published.filter(about).length).toBeGreaterThanOrEqual(2);
      const secretPart = clientSecret.split('_secret_')[1]!;
      expect(JSON.stringify(published)).not.toContain(secretPart);
      for (const e of published.filter(about)) {
        expect((e as { data: { object: Record<string, unknown> } }).data.object).not.toHaveProperty(
          'client_secret',
        );
        // The stored copy is what retries apply and what a relay would publish again.
        const stored = await svc.deps.store.inbox.get((e as { id: string }).id);
        expect(JSON.stringify(stored?.payload)).not.toContain(secretPart);
      }
    } finally {
      await consumer.cancel();
    }
  });
});
