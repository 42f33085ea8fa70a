/**
 * A card whose issuer asks for 3D Secure, confirmed through POST /payment-intent: Stripe answers the intent
 * `requires_action` and charges nothing until the customer authenticates in the browser (Stripe.js, with the
 * client secret). The service must hand that intent back as a success with its client secret, refuse to refund
 * it while nothing is paid, and follow it once the customer has answered the challenge.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
beforeAll(async () => {
  svc = await startTestService('sqlite');
});
afterAll(async () => {
  await svc?.stop();
});

/** The customer's answer to the challenge, as Stripe.js would report it. */
async function authenticate(id: string, outcome: 'succeed' | 'fail'): Promise<void> {
  const res = await fetch(`${svc.deps.sandbox!.url}/_sandbox/payment_intents/${id}/authenticate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ outcome }),
  });
  expect(res.status).toBe(200);
}

async function confirmWith(card: string) {
  const res = await postJson(`${svc.url}/payment-intent`, {
    amount: 3000,
    currency: 'usd',
    payment_method: card,
    confirm: true,
  });
  expect(res.status, res.text).toBe(200);
  return res;
}

describe('POST /payment-intent with a card that asks for 3D Secure', () => {
  it('answers 200 requires_action with the client secret; refundable once the customer authenticates', async () => {
    const res = await confirmWith('pm_card_threeDSecure2Required');
    expect(res.json).toMatchObject({ success: true, status: 'requires_action' });
    const id = res.json.paymentIntentId as string;
    expect(res.json.clientSecret).toMatch(new RegExp(`^${id}_secret_`));
    expect((await getJson(`${svc.url}/payment-intent/${id}`)).json).toMatchObject({
      status: 'requires_action',
      amount_received: 0,
    });

    const early = await postJson(`${svc.url}/refund`, { payment_intent_id: id, amount: 1000 });
    expect(early.status).toBe(409);
    expect(early.json.code).toBe('payment_not_refundable');

    await authenticate(id, 'succeed');
    const paid = await eventually(
      () => getJson(`${svc.url}/payment-intent/${id}`),
      (r) => r.json.status === 'succeeded',
    );
    expect(paid.json).toMatchObject({ status: 'succeeded', amount_received: 3000, amount_refunded: 0 });
    const refund = await postJson(`${svc.url}/refund`, { payment_intent_id: id, amount: 1000 });
    expect(refund.status, refund.text).toBe(200);
    expect(refund.json.refund).toMatchObject({ amount: 1000, status: 'succeeded' });
  });

  it('a failed authentication leaves it requires_payment_method, not refundable', async () => {
    const res = await confirmWith('pm_card_authenticationRequired');
    const id = res.json.paymentIntentId as string;
    await authenticate(id, 'fail');
    const read = await getJson(`${svc.url}/payment-intent/${id}`);
    expect(read.json).toMatchObject({ status: 'requires_payment_method', amount_received: 0 });
    const refund = await postJson(`${svc.url}/refund`, { payment_intent_id: id });
    expect(refund.status).toBe(409);
    expect(refund.json.code).toBe('payment_not_refundable');
  });
});
