/**
 * RFC 9457 problem details. Domain code throws ProblemError; one middleware renders every error,
 * whatever threw it, as application/problem+json.
 */
import { STATUS_CODES } from 'node:http';
import type { components } from '../../generated/openapi.js';

export type Problem = components['schemas']['Problem'];
export type FieldError = components['schemas']['FieldError'];

export interface ProblemExtras {
  code?: string;
  decline_code?: string;
  /** The payment intent a declined confirmation made (it awaits another payment method). */
  payment_intent_id?: string;
  param?: string;
  retry_after?: number;
  errors?: FieldError[];
  type?: string;
  /** Extra response headers, e.g. Retry-After. */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class ProblemError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string | undefined;
  readonly extras: ProblemExtras;

  constructor(status: number, detail?: string, extras: ProblemExtras = {}) {
    super(
      detail ?? STATUS_CODES[status] ?? 'Error',
      extras.cause === undefined ? undefined : { cause: extras.cause },
    );
    this.name = 'ProblemError';
    this.status = status;
    this.title = STATUS_CODES[status] ?? 'Error';
    this.detail = detail;
    this.extras = extras;
  }
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problemBody(
  status: number,
  opts: { detail?: string; instance?: string; requestId?: string } & Omit<ProblemExtras, 'headers' | 'cause'>,
): Problem {
  const { detail, instance, requestId, type, ...rest } = opts;
  const body: Problem = { type: type ?? 'about:blank', title: STATUS_CODES[status] ?? 'Error', status };
  if (detail !== undefined) body.detail = detail;
  if (instance !== undefined) body.instance = instance;
  if (requestId !== undefined) body.request_id = requestId;
  for (const [k, v] of Object.entries(rest)) if (v !== undefined) (body as Record<string, unknown>)[k] = v;
  return body;
}
