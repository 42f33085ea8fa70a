/**
 * A keyed POST /payment-intent whose Stripe answer was lost is answered 503 and its Idempotency-Key freed, so
 * that a retry runs again and gets, from Stripe's own key (derived from the client's), the intent Stripe made.
 * Stripe keeps that key 24 hours from the first call only: a retry later than that is a new request at Stripe
 * as well, and charges the card again. The 503 must say until when "retry later" is safe.
 */
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite', { STRIPE_MAX_NETWORK_RETRIES: '0' });
});
afterEach(() => {
  vi.useRealTimers();
});
afterAll(async () => {
  await svc?.stop();
});

const HOUR = 3_600_000;

async function chargesFor(order: string): Promise<string[]> {
  const all = await svc.deps.stripe.paymentIntents.list({ limit: 100 });
  return all.data
    .filter((pi) => pi.metadata?.order === order && pi.status === 'succeeded')
    .map((pi) => pi.id);
}

/** POST /payment-intent (confirmed) whose Stripe answer is lost after Stripe made and charged the intent. */
async function lostAnswer(order: string, key: string) {
  const body = {
    amount: 1234,
    currency: 'usd',
    payment_method: 'pm_card_visa',
    confirm: true,
    metadata: { order },
  };
  await svc.faults({ drop_rate: 1, match: { method: 'POST', path_prefix: '/v1/payment_intents' } });
  const first = await postJson(`${svc.url}/payment-intent`, body, { 'Idempotency-Key': key });
  await svc.faults({});
  expect(first.status).toBe(503);
  expect(await chargesFor(order)).toHaveLength(1);
  return { body, first };
}

it('a lost answer\'s 503 says "retry later" holds for 24 hours; a retry at 23 h 59 m gets the intent made', async () => {
  vi.useFakeTimers({ toFake: ['Date'] });
  const t0 = Date.now();
  vi.setSystemTime(t0);
  const { body, first } = await lostAnswer('day-within', 'day-within');
  expect(first.json.code).toBe('upstream_unavailable');
  expect(first.headers.get('retry-after')).not.toBeNull();
  expect(String(first.json.detail)).toMatch(/same Idempotency-Key and body, within 24 hours/);
  expect(String(first.json.detail)).toMatch(/After 24 hours .* a retry makes a new one/);

  vi.setSystemTime(t0 + 24 * HOUR - 60_000);
  const retry = await postJson(`${svc.url}/payment-intent`, body, { 'Idempotency-Key': 'day-within' });
  expect(retry.status).toBe(200);
  expect(await chargesFor('day-within')).toEqual([retry.json.paymentIntentId]);
});

it('what the 503 warns of: the same retry at 24 h 1 m charges a second time', async () => {
  vi.useFakeTimers({ toFake: ['Date'] });
  const t0 = Date.now();
  vi.setSystemTime(t0);
  const { body } = await lostAnswer('day-after', 'day-after');
  vi.setSystemTime(t0 + 24 * HOUR + 60_000);
  const retry = await postJson(`${svc.url}/payment-intent`, body, { 'Idempotency-Key': 'day-after' });
  expect(retry.status).toBe(200);
  expect(await chargesFor('day-after')).toHaveLength(2);
});
