/**
 * `charset=utf8` (no hyphen) is a common spelling of UTF-8, and one the WHATWG Encoding standard lists as a label
 * of UTF-8. body-parser takes only `utf-*` names for JSON, so such a request was answered 415 although its body was
 * plain UTF-8. It is read as UTF-8 now, in any letter case and quoted; a charset that is not UTF-8 is still 415
 * problem+json.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite');
});
afterAll(async () => {
  await svc?.stop();
});

const NOTE = 'Café crème ☕ 東京';

describe('Content-Type charset=utf8', () => {
  it.each([
    'application/json; charset=utf8',
    'application/json; charset=UTF8',
    'application/json;charset="utf8"',
    'application/json; charset=Utf8; foo=bar',
  ])('%s: a payment intent is made and its UTF-8 text read as sent', async (type) => {
    const res = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 1500, currency: 'eur', metadata: { note: NOTE } },
      { 'content-type': type },
    );
    expect(res.status, res.text).toBe(200);
    const read = await getJson(`${svc.url}/payment-intent/${res.json.paymentIntentId as string}`);
    expect(read.status, read.text).toBe(200);
    expect(read.json.metadata).toEqual({ note: NOTE });
  });

  it('a refund is taken with it too', async () => {
    const pi = await paidIntent(svc.url, 2000);
    const res = await postJson(
      `${svc.url}/refund`,
      { payment_intent_id: pi, amount: 500, request_id: `utf8-${pi}` },
      { 'content-type': 'application/json; charset=utf8' },
    );
    expect(res.status, res.text).toBe(200);
    expect(res.json.refund).toMatchObject({ amount: 500, status: 'succeeded' });
  });

  it.each([
    'application/json; charset=latin1',
    'application/json; charset=iso-8859-1',
    'application/json; charset=utf88',
    'application/json; charset=utf8x',
  ])('%s is still 415 problem+json', async (type) => {
    const res = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 1500, currency: 'eur' },
      { 'content-type': type },
    );
    expect(res.status, res.text).toBe(415);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({ status: 415, instance: '/payment-intent' });
  });
});
