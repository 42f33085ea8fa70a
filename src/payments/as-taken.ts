/**
 * A payment request's body as the service takes it: what it sends Stripe and keeps is the same for two bodies that
 * are the same here. The service itself reads its input through these, and an Idempotency-Key compares bodies by
 * them (dispatch), so that a retry that writes the same payment differently (`USD` for `usd`) is the same request.
 * Each answers the body it was given, unchanged, when there is nothing to change (the usual case: no copy is made).
 */
import type { OperationId } from '../http/operations.js';

/**
 * Currency codes are taken in lower case, as Stripe names them. Stripe takes a code in any case, and the original
 * service passed the client's through, so its clients may send `SGD`: taken as `sgd` before its rules (idr's twelve
 * digits, kwd's steps of 10) are looked up by it. (The contract allows only ASCII letters.)
 */
const UPPER = /[A-Z]/;

interface WithCurrency {
  currency: string;
}

interface WithLineItems {
  line_items: { price_data: WithCurrency }[];
}

/** POST /payment-intent's body with its currency in lower case. */
export function paymentIntentAsTaken<T extends WithCurrency>(given: T): T {
  return UPPER.test(given.currency) ? { ...given, currency: given.currency.toLowerCase() } : given;
}

/** POST /create-checkout-session's body with each line item's currency in lower case. */
export function checkoutAsTaken<T extends WithLineItems>(given: T): T {
  if (!given.line_items.some((li) => UPPER.test(li.price_data.currency))) return given;
  return {
    ...given,
    line_items: given.line_items.map((li) =>
      UPPER.test(li.price_data.currency)
        ? { ...li, price_data: { ...li.price_data, currency: li.price_data.currency.toLowerCase() } }
        : li,
    ),
  };
}

/**
 * Per operation that takes an Idempotency-Key, its body as taken, where it can differ from the body as sent. The
 * refunds' bodies are taken as sent (no field of theirs is read in more than one spelling).
 */
export const REQUEST_AS_TAKEN: Partial<Record<OperationId, (body: never) => unknown>> = {
  createPaymentIntent: paymentIntentAsTaken<WithCurrency>,
  createCheckoutSession: checkoutAsTaken<WithLineItems>,
};
