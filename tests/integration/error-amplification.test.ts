/**
 * Validation reports every invalid field (allErrors), and the 400 listed all of them, twice (errors[] and
 * the detail). A 16 kB body of 7,000 wrong line items came back as a ~900 kB problem document: fifty-odd
 * times the request, for anyone holding a key (publishable keys, which sit in web pages, may create checkout
 * sessions). The answer must stay small whatever the body, and still say how many problems there were.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let auth: Record<string, string>;

beforeAll(async () => {
  svc = await startTestService('sqlite', { API_AUTH: 'on', RATE_LIMIT_PER_MINUTE: '0', LOG_LEVEL: 'warn' });
  const { key } = await createKey(svc.deps.store.apiKeys, { owner: 'amp', kind: 'publishable' });
  auth = { authorization: `Bearer ${key}` };
});
afterAll(async () => {
  await svc?.stop();
});

describe('size of validation problems', () => {
  it.each([
    [
      '7,000 line items that are not objects',
      '/create-checkout-session',
      {
        line_items: Array.from({ length: 7000 }, () => 1),
        success_url: 'https://shop.example.com/ok',
        cancel_url: 'https://shop.example.com/no',
      },
    ],
    [
      '1,500 metadata keys',
      '/payment-intent',
      {
        amount: 100,
        currency: 'usd',
        metadata: Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`$${i}`, 1])),
      },
    ],
    [
      '1,500 unknown fields',
      '/payment-intent',
      Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`f${i}`, 1])),
    ],
  ])('%s → a 400 of a few kB that still counts them', async (_name, path, body) => {
    const sent = JSON.stringify(body);
    expect(sent.length).toBeLessThan(16 * 1024);
    const res = await postJson(`${svc.url}${path}`, sent, auth);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.text.length).toBeLessThan(8 * 1024);
    const errors = res.json.errors as unknown[];
    expect(errors.length).toBeGreaterThan(1);
    expect(String(res.json.detail)).toMatch(/and \d+ more/);
  });

  it('a body with a couple of mistakes still lists each of them', async () => {
    const res = await postJson(`${svc.url}/payment-intent`, { amount: -1, currency: 'US$' }, auth);
    expect(res.status).toBe(400);
    const paths = (res.json.errors as { path: string }[]).map((e) => e.path).sort();
    expect(paths).toEqual(['/body/amount', '/body/currency']);
    expect(String(res.json.detail)).not.toMatch(/more/);
  });
});
