/**
 * A lone UTF-16 surrogate sent in a JSON body of another charset than UTF-8 is refused 400 `invalid_unicode`, as
 * one written as a `\u` escape is. It got past the check, and was answered 502 upstream_error, or 202 for a refund
 * that could never be made.
 *
 * README (400 row): `invalid_unicode` (a lone UTF-16 surrogate escape in a string); tests/integration/
 * unicode-and-stripe-params.test.ts: such a string "must be refused as a 400 before anything is stored or reserved,
 * not answered 502, and a refund must not be reserved, queued and retried for minutes over it". The check
 * (src/http/well-formed.ts) walked a body only when its raw bytes held a `\u` escape, taking that "only a `\u` escape
 * can make one (bytes that are not UTF-8 decode to U+FFFD)". But body-parser takes every `utf-*` charset the
 * Content-Type names (`application/json; charset=utf-16le`, `charset=utf-7`) and decodes the body with it, and
 * such bytes decode to a lone surrogate without any `\u` escape (UTF-16LE `00 D8`, UTF-7 `+2AA-`). The string then
 * reaches the Stripe SDK, whose form encoder throws URIError:
 * - POST /payment-intent and POST /create-checkout-session: 502 upstream_error ("The payment provider answered
 *   unexpectedly"), logged as Stripe's failure;
 * - POST /refund-async: 202 "Refund request queued successfully", the amount reserved, the worker failing on every
 *   try until the refund ends `failed` (`retries_exhausted:unknown`).
 * A body decoded from any charset but UTF-8 is now always walked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;

beforeAll(async () => {
  svc = await startTestService('sqlite', { LOG_LEVEL: 'warn' });
});
afterAll(async () => {
  await svc?.stop();
});

/** POSTs `body` (bytes) as JSON of `charset`. */
async function post(path: string, body: Buffer, charset: string) {
  const res = await fetch(`${svc.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': `application/json; charset=${charset}` },
    body,
  });
  const text = await res.text();
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    json: JSON.parse(text) as Record<string, unknown>,
  };
}

/** UTF-16LE bytes of `json`, written with every `\uXXXX` escape as the raw code unit (a lone surrogate as itself). */
function utf16le(json: string): Buffer {
  const text = json.replace(/\\u([0-9a-fA-F]{4})/g, (_m, hex: string) =>
    String.fromCharCode(parseInt(hex, 16)),
  );
  return Buffer.from(text, 'utf16le');
}

describe('a lone surrogate in a JSON body of another charset than UTF-8', () => {
  it('POST /payment-intent, UTF-16LE, one in its description: 400 invalid_unicode, not 502', async () => {
    const body = utf16le('{"amount":1000,"currency":"usd","description":"x\\ud800y"}');
    expect(body.includes('\\u')).toBe(false);
    const res = await post('/payment-intent', body, 'utf-16le');
    expect(res.contentType).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({ status: 400, code: 'invalid_unicode' });
    expect(res.status).toBe(400);
  });

  it('POST /payment-intent, UTF-16LE, well-formed text (an emoji): taken as before', async () => {
    const body = utf16le('{"amount":1000,"currency":"usd","description":"mug \\ud83d\\ude00"}');
    const res = await post('/payment-intent', body, 'utf-16le');
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ success: true });
  });

  it('POST /create-checkout-session, UTF-7, one in a product name: 400 invalid_unicode, not 502', async () => {
    const body = Buffer.from(
      '{"line_items":[{"price_data":{"currency":"usd","product_data":{"name":"x+2AA-y"},"unit_amount":500},"quantity":1}],' +
        '"success_url":"https://shop.example.com/ok","cancel_url":"https://shop.example.com/no"}',
    );
    const res = await post('/create-checkout-session', body, 'utf-7');
    expect(res.json).toMatchObject({ status: 400, code: 'invalid_unicode' });
    expect(res.status).toBe(400);
  });

  it('POST /refund-async, UTF-7, one in metadata: 400, never accepted for a worker that can never send it', async () => {
    const pi = await paidIntent(svc.url, 1000);
    const body = Buffer.from(
      `{"payment_intent_id":"${pi}","amount":400,"request_id":"lone-utf7","metadata":{"note":"x+2AA-y"}}`,
    );
    const res = await post('/refund-async', body, 'utf-7');
    expect(res.json).toMatchObject({ status: 400, code: 'invalid_unicode' });
    expect(res.status).toBe(400);
    expect((await getJson(`${svc.url}/refund-status/lone-utf7`)).status).toBe(404);
    expect((await getJson(`${svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(0);
  });
});
