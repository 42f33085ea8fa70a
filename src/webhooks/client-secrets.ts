/**
 * Stripe puts the payment intent's `client_secret` in its `payment_intent.*` events (and a setup intent's or
 * an embedded checkout session's in theirs). That secret lets whoever holds it confirm the payment from a
 * browser; Stripe asks that it reach nobody but the customer. The service needs none of it to apply an event,
 * so it is dropped on receipt: neither the inbox nor the `stripe.events` exchange, whose subscribers may be any
 * service on the broker, ever holds it.
 */

/**
 * A client secret written inside a string. An intent awaiting 3D Secure has in `next_action` the URL of its
 * challenge page, which carries the secret in its query string (`hooks.stripe.com/3d_secure_2/hosted?...
 * &payment_intent_client_secret=pi_..._secret_...`, or a setup intent's, or a source's `src_client_secret_...`).
 */
const EMBEDDED_SECRET = /\b(?:(?:pi|seti)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+|src_client_secret_[A-Za-z0-9]+)/g;

/**
 * Removes every `client_secret` field from the event, in place, at any depth (an expanded object carries its
 * own), and every client secret written inside a string value (the rest of the string stays). Only called on
 * verified events, whose nesting verifyStripeEvent has bounded.
 */
export function dropClientSecrets<T>(event: T): T {
  return strip(event) as T;
}

function strip(value: unknown): unknown {
  if (typeof value === 'string')
    return value.includes('secret_') ? value.replace(EMBEDDED_SECRET, '') : value;
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = strip(value[i]);
    return value;
  }
  const record = value as Record<string, unknown>;
  if ('client_secret' in record) delete record['client_secret'];
  for (const [key, child] of Object.entries(record)) {
    const stripped = key === 'metadata' ? stripMetadata(child) : strip(child);
    if (stripped !== child) record[key] = stripped;
  }
  return value;
}

/**
 * A `metadata` object, but for the refund's `request_id`: the service's own tag (the request id a client chose, or
 * one made from its Idempotency-Key), by which a webhook that beats the service's own write finds the ledger row.
 * Text in it shaped like a client secret (`order-pi_1_secret_2`) is the client's id, not Stripe's secret; cut out,
 * the tag named no row and the refund was recorded as one made outside the service, its amount counted twice.
 */
function stripMetadata(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return strip(value);
  const record = value as Record<string, unknown>;
  for (const [key, child] of Object.entries(record)) {
    if (key === 'request_id') continue;
    const stripped = strip(child);
    if (stripped !== child) record[key] = stripped;
  }
  return value;
}
