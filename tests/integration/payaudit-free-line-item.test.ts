/**
 * Stripe takes a checkout line item's `unit_amount` of 0 (a non-negative integer: a free gift beside what is paid
 * for), and the Python service passed line items through to it; the session's total must still reach Stripe's
 * minimum. The contract refused 0 for every line item, so a shop adding a free item got a 400.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateResponse } from '../helpers/contract.js';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

const item = (name: string, unit_amount: number, quantity = 1) => ({
  price_data: { currency: 'usd', product_data: { name }, unit_amount },
  quantity,
});
const checkout = (...line_items: ReturnType<typeof item>[]) => ({
  line_items,
  success_url: 'https://shop.example.com/ok?session_id={CHECKOUT_SESSION_ID}',
  cancel_url: 'https://shop.example.com/no',
});

describe('a free line item in a checkout session', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('sqlite');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('is sold beside a paid one, and the customer pays for the paid one', async () => {
    const made = await postJson(
      `${svc.url}/create-checkout-session`,
      checkout(item('Lamp', 2500), item('Gift wrap', 0, 2)),
    );
    expect(made.status).toBe(200);
    expect(validateResponse('createCheckoutSession', 200, made.json)).toEqual([]);
    expect(made.json).toMatchObject({ amount_total: 2500, currency: 'usd' });
    const lines = await svc.deps.stripe.checkout.sessions.listLineItems(made.json.id as string);
    expect(lines.data.map((l) => [l.description, l.quantity, l.amount_total])).toEqual([
      ['Lamp', 1, 2500],
      ['Gift wrap', 2, 0],
    ]);
  });

  it('alone is refused with a problem: there is nothing to pay', async () => {
    const made = await postJson(`${svc.url}/create-checkout-session`, checkout(item('Gift wrap', 0)));
    expect(made.status).toBe(400);
    expect(made.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(made.json.param).toBe('line_items');
  });

  it('is still refused below 0, and payment intents still take no amount of 0', async () => {
    const negative = await postJson(`${svc.url}/create-checkout-session`, checkout(item('Lamp', -1)));
    expect(negative.status).toBe(400);
    expect(negative.json.errors).toEqual([
      expect.objectContaining({ path: '/body/line_items/0/price_data/unit_amount' }),
    ]);
    const zero = await postJson(`${svc.url}/payment-intent`, { amount: 0, currency: 'usd' });
    expect(zero.status).toBe(400);
    expect(zero.json.errors).toEqual([expect.objectContaining({ path: '/body/amount' })]);
  });
});
