/**
 * A payment request's body as the service takes it: what it sends Stripe and keeps is the same for two bodies that
 * are the same here. The service itself reads its input through these, and an Idempotency-Key compares bodies by
 * them (dispatch), so that a retry that writes the same payment differently (`USD` for `usd`) is the same request.
 * Each answers the body it was given, unchanged, when there is nothing to change (the usual case: no copy is made).
 *
 * What is taken otherwise than sent:
 * - Currency codes, in lower case, as Stripe names them. Stripe takes a code in any case, and the original service
 *   passed the client's through, so its clients may send `SGD`: taken as `sgd` before its rules (idr's twelve
 *   digits, kwd's steps of 10) are looked up by it. (The contract allows only ASCII letters.)
 * - An empty `description` (the intent's, or a product's), and empty `metadata`, as none: Stripe is sent none
 *   (the SDK leaves an empty object out of the request), and nothing is kept of them. A refund's empty `metadata`
 *   too.
 * - A metadata key of empty value (`{"k": ""}`: an intent's, a session's or a refund's) as not given: on create
 *   Stripe takes an empty value as a key not set (an empty value unsets a key), so its object has no `k`, and the
 *   ledger keeps the metadata as Stripe does.
 *   Stripe is sent the metadata as taken; only a retry under a Stripe idempotency key an earlier version used with
 *   the keys as sent (before 92d2648) sends them again (metadataAsSent, src/payments/service.ts).
 * The refund ledger, which compares a request_id's bodies itself, takes a refund's body through refundAsTaken as
 * well (src/refunds), so that its request_id and an Idempotency-Key compare it alike.
 * Nothing else: strings are not trimmed (`"a "` is not `"a"` at Stripe), and metadata values are passed on as
 * sent.
 */
import type { OperationId } from '../http/operations.js';

const UPPER = /[A-Z]/;

interface PaymentIntentBody {
  currency: string;
  description?: string;
  metadata?: Record<string, string>;
}

interface CheckoutBody {
  line_items: {
    price_data: { currency: string; product_data: { description?: string } };
  }[];
  metadata?: Record<string, string>;
}

function isEmpty(metadata: Record<string, string> | undefined): boolean {
  if (metadata === undefined) return false;
  for (const _ in metadata) return false;
  return true;
}

/** Whether metadata is taken otherwise than sent: empty, or with a key of empty value. */
function metadataChanges(metadata: Record<string, string> | undefined): boolean {
  if (metadata === undefined) return false;
  for (const key in metadata) if (metadata[key] === '') return true;
  return isEmpty(metadata);
}

/** Metadata as taken: without keys of empty value; none when nothing is left. */
function metadataAsTaken(metadata: Record<string, string> | undefined): {
  metadata?: Record<string, string>;
} {
  if (metadata === undefined) return {};
  const kept = Object.entries(metadata).filter(([, v]) => v !== '');
  return kept.length === 0 ? {} : { metadata: Object.fromEntries(kept) };
}

/**
 * The metadata as sent when it is taken otherwise for its keys of empty value (the keys dropped as taken), else
 * undefined: empty metadata is none either way (the SDK leaves an empty object out of the request).
 */
export function metadataWithEmptyValues(
  metadata: Record<string, string> | undefined,
): Record<string, string> | undefined {
  if (metadata === undefined) return undefined;
  for (const key in metadata) if (metadata[key] === '') return metadata;
  return undefined;
}

/** Whether a line item is taken otherwise than sent. */
function lineItemChanges(li: CheckoutBody['line_items'][number]): boolean {
  return UPPER.test(li.price_data.currency) || li.price_data.product_data.description === '';
}

/** POST /payment-intent's body as taken. */
export function paymentIntentAsTaken<T extends PaymentIntentBody>(given: T): T {
  if (!UPPER.test(given.currency) && given.description !== '' && !metadataChanges(given.metadata))
    return given;
  const { description, metadata, ...rest } = given;
  return {
    ...rest,
    currency: given.currency.toLowerCase(),
    ...(description ? { description } : {}),
    ...metadataAsTaken(metadata),
  } as T;
}

/** POST /create-checkout-session's body as taken. */
export function checkoutAsTaken<T extends CheckoutBody>(given: T): T {
  if (!given.line_items.some(lineItemChanges) && !metadataChanges(given.metadata)) return given;
  const { metadata, ...rest } = given;
  return {
    ...rest,
    line_items: given.line_items.map((li) => {
      if (!lineItemChanges(li)) return li;
      const { description, ...product } = li.price_data.product_data;
      return {
        ...li,
        price_data: {
          ...li.price_data,
          currency: li.price_data.currency.toLowerCase(),
          product_data: { ...product, ...(description ? { description } : {}) },
        },
      };
    }),
    ...metadataAsTaken(metadata),
  } as T;
}

/** POST /refund's and POST /refund-async's body as taken (the refund ledger's too: src/refunds). */
export function refundAsTaken<T extends { metadata?: Record<string, string> }>(given: T): T {
  if (!metadataChanges(given.metadata)) return given;
  const { metadata, ...rest } = given;
  return { ...rest, ...metadataAsTaken(metadata) } as T;
}

/** Per operation that takes an Idempotency-Key, its body as taken, where it can differ from the body as sent. */
export const REQUEST_AS_TAKEN: Partial<Record<OperationId, (body: never) => unknown>> = {
  createPaymentIntent: paymentIntentAsTaken<PaymentIntentBody>,
  createCheckoutSession: checkoutAsTaken<CheckoutBody>,
  createRefund: refundAsTaken,
  createRefundAsync: refundAsTaken,
};
