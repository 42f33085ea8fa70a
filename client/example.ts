/**
 * The client end to end against a running service (`npm start` runs one in embedded mode):
 *
 *   PAYMENTS_URL=http://127.0.0.1:5000 PAYMENTS_API_KEY=psk_... npx tsx client/example.ts
 *
 * Takes a test payment, refunds half at once and queues the rest, then waits for the queued refund.
 */
import { createPaymentsClient, unwrap, withIdempotencyKey } from './index.js';

const payments = createPaymentsClient({
  baseUrl: process.env.PAYMENTS_URL ?? 'http://127.0.0.1:5000',
  ...(process.env.PAYMENTS_API_KEY ? { apiKey: process.env.PAYMENTS_API_KEY } : {}),
});

// One key per logical payment: a retry with the same key cannot charge twice.
const orderKey = `order-1042-${Date.now()}`;
const intent = await unwrap(
  payments.POST('/payment-intent', {
    body: { amount: 2000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true },
    ...withIdempotencyKey(orderKey),
  }),
);
console.log('payment intent', intent.paymentIntentId, intent.status);

// A refund is money too: its own key, kept for any retry of this refund.
const refund = await unwrap(
  payments.POST('/refund', {
    body: { payment_intent_id: intent.paymentIntentId, amount: 1000, reason: 'requested_by_customer' },
    ...withIdempotencyKey(`${orderKey}-refund-1`),
  }),
);
console.log('refunded now', refund.refund.amount, refund.refund.status);

const settled = await payments.refundAndWait(
  { payment_intent_id: intent.paymentIntentId },
  { timeoutMs: 30_000 },
);
console.log('queued refund', settled.request_id, settled.status, settled.amount);
