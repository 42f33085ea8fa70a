/**
 * Type-level tests, checked by `npm run typecheck` (tsc): each `@ts-expect-error` must meet an error,
 * so if the typed contract ever stopped rejecting these mistakes, tsc would fail on the unused directive.
 */
import type { Handler, Handlers } from '../../src/http/operations.js';
import { notImplemented } from '../../src/http/operations.js';

const ok: Handler<'createPaymentIntent'> = async ({ body }) => ({
  status: 200,
  body: { success: true, clientSecret: `pi_${body.amount}_secret_x`, paymentIntentId: 'pi_1' },
});

// An undocumented status is rejected.
// @ts-expect-error 201 is not a documented response of createPaymentIntent
const wrongStatus: Handler<'createPaymentIntent'> = async () => ({
  status: 201,
  body: { success: true, clientSecret: 'x', paymentIntentId: 'pi_1' },
});

// A body missing a required field is rejected.
// @ts-expect-error clientSecret is required in the 200 body
const missingField: Handler<'createPaymentIntent'> = async () => ({
  status: 200,
  body: { success: true, paymentIntentId: 'pi_1' },
});

// A body of the wrong type is rejected.
// @ts-expect-error request_id must be a string
const wrongType: Handler<'createRefundAsync'> = async () => ({
  status: 202,
  body: { success: true, message: 'queued', request_id: 42 },
});

// Reading a request field that the contract does not define is rejected.
const unknownInput: Handler<'createRefund'> = async ({ body }) => {
  // @ts-expect-error createRefund has no `currency` in its request body
  void body.currency;
  return { status: 200, body: { success: true, refund: { id: 're_1', amount: 1, status: 'succeeded' } } };
};

// A handler table missing an operation is rejected.
// @ts-expect-error handleStripeWebhook (and others) are missing
const incomplete: Handlers = {
  createPaymentIntent: ok,
  getPaymentIntent: notImplemented('getPaymentIntent'),
};

// A handler registered under the wrong operation is rejected.
const swapped: Partial<Handlers> = {
  // @ts-expect-error a createPaymentIntent handler cannot serve createRefundAsync
  createRefundAsync: ok,
};

export { ok, wrongStatus, missingField, wrongType, unknownInput, incomplete, swapped };
