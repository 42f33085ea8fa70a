/**
 * An operation's JSON answer as a client reads it: its Content-Type, a Content-Length that counts bytes (not
 * characters), the security headers, HEAD without the body, and a conditional GET answered as Express's own
 * freshness check answers it. The dispatcher writes JSON answers itself rather than through res.json (a
 * measurable part of a request's CPU), so these pin what res.json gave.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestAs } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite');
});
afterAll(async () => {
  await svc?.stop();
});

async function paidIntentWithMetadata(metadata: Record<string, string>): Promise<string> {
  const res = await fetch(`${svc.url}/payment-intent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      amount: 1234,
      currency: 'eur',
      payment_method: 'pm_card_visa',
      confirm: true,
      metadata,
    }),
  });
  const body = (await res.json()) as { paymentIntentId: string };
  expect(res.status).toBe(200);
  return body.paymentIntentId;
}

describe('JSON answers of operations', () => {
  it('carry application/json in UTF-8 and a Content-Length in bytes', async () => {
    const id = await paidIntentWithMetadata({ note: 'Café – 支付 ✓' });
    const res = await fetch(`${svc.url}/payment-intent/${id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(Number(res.headers.get('content-length'))).toBe(bytes.length);
    const body = JSON.parse(bytes.toString('utf8')) as { id: string; metadata: Record<string, string> };
    expect(body.id).toBe(id);
    expect(body.metadata).toEqual({ note: 'Café – 支付 ✓' });
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(res.headers.get('etag')).toBeNull();
  });

  it('POST /payment-intent answers its JSON the same way', async () => {
    const res = await fetch(`${svc.url}/payment-intent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 500, currency: 'usd' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const text = await res.text();
    expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    expect(JSON.parse(text)).toMatchObject({ success: true, status: 'requires_payment_method' });
  });

  it('HEAD gets the headers GET gets, Content-Length included, and no body', async () => {
    const id = await paidIntentWithMetadata({ note: 'ü' });
    const get = await fetch(`${svc.url}/payment-intent/${id}`);
    const getBody = await get.text();
    const head = await fetch(`${svc.url}/payment-intent/${id}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(head.headers.get('content-length')).toBe(String(Buffer.byteLength(getBody)));
    expect(await head.text()).toBe('');
  });

  // fetch adds Cache-Control: no-cache to a conditional request, which makes Express take it as unconditional.
  it('a conditional GET is answered as before: If-None-Match * is 304 without a body, a tag is 200', async () => {
    const host = new URL(svc.url).host;
    const any = await requestAs(`${svc.url}/healthz`, host, { headers: { 'if-none-match': '*' } });
    expect(any.status).toBe(304);
    expect(any.text).toBe('');
    expect(any.headers['content-type']).toBeUndefined();
    const reload = await requestAs(`${svc.url}/healthz`, host, {
      headers: { 'if-none-match': '*', 'cache-control': 'no-cache' },
    });
    expect(reload.status).toBe(200);
    expect(JSON.parse(reload.text)).toMatchObject({ status: 'ok' });
    const tagged = await requestAs(`${svc.url}/healthz`, host, { headers: { 'if-none-match': '"abc"' } });
    expect(tagged.status).toBe(200);
    expect(tagged.headers['content-type']).toBe('application/json; charset=utf-8');
    const since = await requestAs(`${svc.url}/healthz`, host, {
      headers: { 'if-modified-since': new Date().toUTCString() },
    });
    expect(since.status).toBe(200);
    expect(JSON.parse(since.text)).toMatchObject({ status: 'ok' });
  });
});
