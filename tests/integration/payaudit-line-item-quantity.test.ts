/**
 * Stripe takes a checkout line item's `quantity` of up to 999,999 (a shop selling stickers by the thousand), and
 * the Python service passed line items through to it. The contract stopped at 999, so an order of 1,000 got a 400.
 * The session's total is still Stripe's to bound (eight digits in most currencies).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateResponse } from '../helpers/contract.js';
import { postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

const checkout = (quantity: number, unit_amount = 25) => ({
  line_items: [{ price_data: { currency: 'usd', product_data: { name: 'Sticker' }, unit_amount }, quantity }],
  success_url: 'https://shop.example.com/ok?session_id={CHECKOUT_SESSION_ID}',
  cancel_url: 'https://shop.example.com/no',
});

describe('checkout line item quantities', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('sqlite');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('takes thousands of one item', async () => {
    const made = await postJson(`${svc.url}/create-checkout-session`, checkout(5000));
    expect(made.status).toBe(200);
    expect(validateResponse('createCheckoutSession', 200, made.json)).toEqual([]);
    expect(made.json.amount_total).toBe(125_000);
    const lines = await svc.deps.stripe.checkout.sessions.listLineItems(made.json.id as string);
    expect(lines.data.map((l) => l.quantity)).toEqual([5000]);
  });

  it("refuses more than Stripe's 999,999, and a total past Stripe's maximum", async () => {
    const many = await postJson(`${svc.url}/create-checkout-session`, checkout(1_000_000));
    expect(many.status).toBe(400);
    expect(many.json.errors).toEqual([
      expect.objectContaining({ path: '/body/line_items/0/quantity', message: 'must be <= 999999' }),
    ]);
    const dear = await postJson(`${svc.url}/create-checkout-session`, checkout(999_999, 1000));
    expect(dear.status).toBe(400);
    expect(dear.json).toMatchObject({ code: 'amount_too_large', param: 'line_items' });
  });
});
