/**
 * Maps every Stripe failure to what our client should see, in one place. Card problems are the
 * customer's (402 with Stripe's codes); bad requests are the caller's (400/404); rate limits and
 * outages are temporary (503 + Retry-After); Stripe refusing our own key is our fault (502).
 */
import Stripe from 'stripe';
import { ProblemError } from '../http/problem.js';

export type StripeFailureKind =
  'card' | 'invalid' | 'not_found' | 'idempotency' | 'transient' | 'auth' | 'unknown';

export function classifyStripeError(err: unknown): StripeFailureKind {
  if (!(err instanceof Stripe.errors.StripeError)) return 'unknown';
  if (err instanceof Stripe.errors.StripeCardError) return 'card';
  if (err instanceof Stripe.errors.StripeRateLimitError) return 'transient';
  if (err instanceof Stripe.errors.StripeConnectionError) return 'transient';
  if (err instanceof Stripe.errors.StripeAPIError) return 'transient';
  if (err instanceof Stripe.errors.StripeAuthenticationError) return 'auth';
  if (err instanceof Stripe.errors.StripePermissionError) return 'auth';
  // The SDK makes an idempotency_error a StripeIdempotencyError only for 400 and 404 (a key reused with other
  // parameters or on another endpoint). Its 409, a request with the same key still running at Stripe, is a
  // StripeAPIError above: transient, since asking again later returns that request's result.
  if (err instanceof Stripe.errors.StripeIdempotencyError)
    return err.statusCode === 409 ? 'transient' : 'idempotency';
  if (err instanceof Stripe.errors.StripeInvalidRequestError) {
    return err.statusCode === 404 || err.code === 'resource_missing' ? 'not_found' : 'invalid';
  }
  const status = err.statusCode ?? 0;
  if (status === 429 || status >= 500) return 'transient';
  if (status === 401 || status === 403) return 'auth';
  if (status === 404) return 'not_found';
  if (status >= 400) return 'invalid';
  return 'unknown';
}

/**
 * Stripe's 409 for a request whose idempotency key another request (of this process or another) is still
 * using: that request will get Stripe's real answer. The SDK makes it a StripeAPIError (it types only 400s and
 * 404s as idempotency errors), so it is told by its status and code.
 */
export function isIdempotencyKeyInUse(err: unknown): boolean {
  return (
    err instanceof Stripe.errors.StripeError &&
    err.statusCode === 409 &&
    (err.code === 'idempotency_key_in_use' || err.rawType === 'idempotency_error')
  );
}

/**
 * Stripe answered with a 5xx saved under this idempotency key: the request that first used the key ended in that
 * error, and every retry with the key gets the same answer (docs.stripe.com/api/idempotent_requests). A replay says
 * so with Idempotent-Replayed: true. The first answer, the 500 as Stripe saved it, says so with Stripe-Should-Retry:
 * false, which also keeps the SDK from retrying it (RequestSender._shouldRetry: Stripe sends it on a 500 "since our
 * idempotency framework would typically replay it anyway"), so that answer is the one the service sees. A 5xx from
 * in front of Stripe's idempotency layer has neither header, and a retry with the key is a new request.
 */
export function isSavedServerError(err: unknown): boolean {
  const e = err as { statusCode?: unknown; headers?: Record<string, unknown> } | null;
  if (typeof e?.statusCode !== 'number' || e.statusCode < 500) return false;
  // The SDK keeps the answer's headers on the error as Node gives them: names in lower case.
  return e.headers?.['idempotent-replayed'] === 'true' || e.headers?.['stripe-should-retry'] === 'false';
}

/**
 * The problem for a create call (payment intent, checkout session), whose Stripe idempotency key is derived from
 * the client's Idempotency-Key. Two answers of Stripe's then speak of the client's key: other parameters under it
 * (422, as the key's own record says), and a 5xx saved under it: not a 503 "retry later", since every retry with
 * that key gets the same error from Stripe for as long as Stripe keeps the key (24 hours or more). Only a new
 * key helps. That holds from Stripe's first answer on (see isSavedServerError), not only from its replays: the SDK
 * does not retry a saved 500, so answering that one "retry later" sent the client into this 502 on its retry. The
 * service's own record of the key is freed by any 5xx (src/http/dispatch.ts), so a retry with the key runs again
 * and gets the same 502 from Stripe's replay.
 */
export function toCreateProblem(
  err: unknown,
  what: 'payment_intent' | 'checkout_session',
  /** Whether the client sent an Idempotency-Key (Stripe's key is then derived from it). */
  keyed = true,
): ProblemError {
  // Stripe's key is derived from the client's: Stripe refusing other parameters under it is the client reusing
  // its Idempotency-Key with another body (the key's own record, freed by an earlier 5xx, would have said so).
  if (classifyStripeError(err) === 'idempotency')
    return new ProblemError(422, 'This Idempotency-Key was used with a different request.', {
      code: 'idempotency_key_reused',
      cause: err,
    });
  if (!keyed && outcomeUnknown(err)) {
    // Stripe may have made the object before the answer was lost or failed; this call's key was a fresh one, so
    // a retry is a new request. "Retry later" would invite a second payment intent (a second charge if it
    // confirms), and so would Retry-After, which retrying HTTP clients follow by themselves.
    const { retry_after: _retryAfter, headers: _headers, ...extras } = toProblem(err, what).extras;
    return new ProblemError(
      503,
      `The payment provider did not confirm this request and may have made the ${what.replace('_', ' ')} all ` +
        'the same. It had no Idempotency-Key, so a retry may make a second one: check first (webhooks, your ' +
        'metadata), and send an Idempotency-Key to make retries safe.',
      { ...extras, cause: err },
    );
  }
  if (keyed && outcomeUnknown(err) && !isSavedServerError(err)) {
    // "Retry later" holds only while Stripe keeps its key, 24 hours from this call: the service's own key is
    // freed by this 5xx, so a retry after that is a new request at Stripe too, and makes (and charges) another.
    const problem = toProblem(err, what);
    return new ProblemError(
      problem.status,
      `The payment provider did not confirm this request and may have made the ${what.replace('_', ' ')} all ` +
        'the same. Retry later with the same Idempotency-Key and body, within 24 hours: the retry gets the one ' +
        'made, not a second. After 24 hours the provider has forgotten the key and a retry makes a new one: ' +
        'check first (webhooks, your metadata).',
      { ...problem.extras, cause: err },
    );
  }
  if (!isSavedServerError(err)) return toProblem(err, what);
  return new ProblemError(
    502,
    'The payment provider failed this request and answers every retry with this Idempotency-Key with the same ' +
      'error, so retrying with it cannot succeed. A new Idempotency-Key makes a new request; the provider may ' +
      'have made the object all the same, so check (webhooks, your metadata) before sending one.',
    { code: 'upstream_error_saved', cause: err },
  );
}

/** A failure after which Stripe may or may not have acted: the answer was lost, or Stripe failed while at it. */
function outcomeUnknown(err: unknown): boolean {
  if (err instanceof Stripe.errors.StripeConnectionError) return true;
  if (isIdempotencyKeyInUse(err)) return false;
  return err instanceof Stripe.errors.StripeError && (err.statusCode ?? 0) >= 500;
}

/**
 * Stripe refused a refund because the charge has less left to refund than asked: `charge_already_refunded` when
 * nothing is left, `amount_exceeds_refundable` when some is. The ledger counted more as left because refunds
 * were made outside the service (the Stripe dashboard) whose webhooks it has not applied yet. Answered with the
 * service's own codes for the same refusal. The service checks a refund's amount before calling Stripe (at least
 * 1, in the currency's step), so Stripe refusing the `amount` param means only that it exceeds what is left.
 * Null for any other failure.
 */
export function overRefundCode(err: unknown): 'charge_already_refunded' | 'amount_exceeds_refundable' | null {
  if (!(err instanceof Stripe.errors.StripeInvalidRequestError)) return null;
  if (err.code === 'charge_already_refunded') return 'charge_already_refunded';
  if (err.code === 'amount_too_large' || err.param === 'amount') return 'amount_exceeds_refundable';
  return null;
}

/**
 * A failure worth retrying later with the same idempotency key: Stripe was unavailable or did not answer, or it
 * refused the service's own credentials (401, 403). That refusal says nothing of the request, which Stripe did not
 * look at: it can be made once the operator fixes STRIPE_SECRET_KEY, so a refund is not failed for it.
 */
export function isTransientStripeError(err: unknown): boolean {
  const kind = classifyStripeError(err);
  return kind === 'transient' || kind === 'unknown' || kind === 'auth';
}

const NOT_FOUND_DETAIL: Record<string, string> = {
  payment_intent: 'No such payment intent.',
  checkout_session: 'No such checkout session.',
  refund: 'No such refund.',
};

export function toProblem(
  err: unknown,
  what: keyof typeof NOT_FOUND_DETAIL | 'object' = 'object',
): ProblemError {
  if (err instanceof ProblemError) return err;
  const kind = classifyStripeError(err);
  const e = err instanceof Stripe.errors.StripeError ? err : undefined;
  const code = e?.code;
  switch (kind) {
    case 'card':
      // Stripe writes card messages for end customers ("Your card was declined."), so they are safe to show.
      return new ProblemError(402, e?.message, {
        code: code ?? 'card_declined',
        ...(e?.decline_code ? { decline_code: e.decline_code } : {}),
        cause: err,
      });
    case 'not_found':
      return new ProblemError(404, NOT_FOUND_DETAIL[what] ?? 'No such object.', {
        code: 'resource_missing',
        cause: err,
      });
    case 'invalid':
      return new ProblemError(400, e?.message ?? 'The payment provider rejected the request.', {
        code: code ?? 'invalid_request',
        ...(e?.param ? { param: e.param } : {}),
        cause: err,
      });
    case 'idempotency':
      return new ProblemError(
        409,
        'A conflicting request with the same id is already known to the payment provider.',
        {
          code: 'idempotency_conflict',
          cause: err,
        },
      );
    case 'transient': {
      const retryAfter = err instanceof Stripe.errors.StripeRateLimitError ? 2 : 5;
      return new ProblemError(503, 'The payment provider is unavailable or rate limiting. Retry later.', {
        code:
          err instanceof Stripe.errors.StripeRateLimitError
            ? 'upstream_rate_limited'
            : 'upstream_unavailable',
        retry_after: retryAfter,
        headers: { 'Retry-After': String(retryAfter) },
        cause: err,
      });
    }
    case 'auth':
      return new ProblemError(502, "The payment provider rejected the service's credentials.", {
        code: 'upstream_authentication',
        cause: err,
      });
    default:
      return new ProblemError(502, 'The payment provider answered unexpectedly.', {
        code: 'upstream_error',
        cause: err,
      });
  }
}
