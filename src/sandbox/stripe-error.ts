export type StripeErrorType =
  'api_error' | 'card_error' | 'idempotency_error' | 'invalid_request_error' | 'rate_limit_error';

export interface StripeErrorFields {
  type: StripeErrorType;
  message: string;
  code?: string;
  param?: string;
  decline_code?: string;
  charge?: string;
  payment_intent?: unknown;
  payment_method?: unknown;
}

/**
 * A failure that must reach the client as Stripe's `{ error: {...} }` body. Thrown from anywhere
 * inside request handling; the server turns it into the response.
 */
export class SandboxError extends Error {
  readonly status: number;
  readonly fields: StripeErrorFields;
  /** Extra response headers (for example `Stripe-Should-Retry`). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(status: number, fields: StripeErrorFields, headers: Record<string, string> = {}) {
    super(fields.message);
    this.name = 'SandboxError';
    this.status = status;
    this.fields = fields;
    this.headers = headers;
  }
}

export function docUrl(code: string): string {
  return `https://stripe.com/docs/error-codes/${code.replace(/_/g, '-')}`;
}

/** Serialises the error the way Stripe does: only the fields that apply, plus doc and log links. */
export function errorBody(fields: StripeErrorFields, requestId: string): string {
  const error: Record<string, unknown> = {};
  if (fields.charge !== undefined) error['charge'] = fields.charge;
  if (fields.code !== undefined) error['code'] = fields.code;
  if (fields.decline_code !== undefined) error['decline_code'] = fields.decline_code;
  if (fields.code !== undefined) error['doc_url'] = docUrl(fields.code);
  error['message'] = fields.message;
  if (fields.param !== undefined) error['param'] = fields.param;
  if (fields.payment_intent !== undefined) error['payment_intent'] = fields.payment_intent;
  if (fields.payment_method !== undefined) error['payment_method'] = fields.payment_method;
  error['request_log_url'] =
    `https://dashboard.stripe.com/test/logs/${requestId}?t=${Math.floor(Date.now() / 1000)}`;
  error['type'] = fields.type;
  return JSON.stringify({ error });
}

export function invalidRequest(message: string, param?: string, code?: string, status = 400): SandboxError {
  return new SandboxError(status, {
    type: 'invalid_request_error',
    message,
    ...(param !== undefined ? { param } : {}),
    ...(code !== undefined ? { code } : {}),
  });
}

/** Stripe names the object type in the message, e.g. `No such payment_intent: 'pi_123'`. */
export function resourceMissing(objectName: string, id: string, param: string): SandboxError {
  return new SandboxError(404, {
    type: 'invalid_request_error',
    code: 'resource_missing',
    message: `No such ${objectName}: '${id}'`,
    param,
  });
}

export function unexpectedState(message: string, param?: string): SandboxError {
  return invalidRequest(message, param, 'payment_intent_unexpected_state');
}
