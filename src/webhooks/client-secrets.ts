/**
 * Stripe puts the payment intent's `client_secret` in its `payment_intent.*` events (and a setup intent's or
 * an embedded checkout session's in theirs). That secret lets whoever holds it confirm the payment from a
 * browser; Stripe asks that it reach nobody but the customer. The service needs none of it to apply an event,
 * so it is dropped on receipt: neither the inbox nor the `stripe.events` exchange, whose subscribers may be any
 * service on the broker, ever holds it.
 */

/**
 * Removes every `client_secret` field from the event, in place, at any depth (an expanded object carries its
 * own). Only called on verified events, whose nesting verifyStripeEvent has bounded.
 */
export function dropClientSecrets<T>(event: T): T {
  strip(event);
  return event;
}

function strip(value: unknown): void {
  if (typeof value !== 'object' || value === null) return;
  if (Array.isArray(value)) {
    for (const item of value) strip(item);
    return;
  }
  const record = value as Record<string, unknown>;
  if ('client_secret' in record) delete record['client_secret'];
  for (const child of Object.values(record)) strip(child);
}
