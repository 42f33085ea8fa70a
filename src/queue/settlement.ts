/**
 * Turning a handler's outcome into broker actions, shared by both drivers so that 'retry',
 * 'dead-letter' and the attempt counter mean exactly the same thing in embedded and scaled-out mode.
 */
import { isPlainRequestId } from '../http/request-id.js';
import {
  ATTEMPT_HEADER,
  DEAD_LETTER_REASON_HEADER,
  DELIVERY_COUNT_HEADER,
  REQUEST_ID_HEADER,
  RETRY_REASON_HEADER,
  SOURCE_QUEUE_HEADER,
} from './topology.js';
import type { Delivery, Outcome } from './types.js';

export type Settlement =
  | { action: 'ack' }
  | { action: 'release' }
  | { action: 'delay'; nextAttempt: number; reason: string }
  | { action: 'dead-letter'; reason: string };

export function decideSettlement(outcome: Outcome, attempt: number, maxAttempts: number): Settlement {
  switch (outcome.kind) {
    case 'ack':
      return { action: 'ack' };
    case 'release':
      return { action: 'release' };
    case 'retry': {
      const nextAttempt = attempt + 1;
      if (nextAttempt < maxAttempts) return { action: 'delay', nextAttempt, reason: outcome.reason };
      return {
        action: 'dead-letter',
        reason: `retries exhausted after ${nextAttempt} attempts: ${outcome.reason}`,
      };
    }
    case 'dead-letter':
      return { action: 'dead-letter', reason: outcome.reason };
  }
}

export function isOutcome(value: unknown): value is Outcome {
  if (typeof value !== 'object' || value === null) return false;
  const { kind, reason } = value as { kind?: unknown; reason?: unknown };
  if (kind === 'ack' || kind === 'release') return true;
  return (kind === 'retry' || kind === 'dead-letter') && typeof reason === 'string';
}

export function validateConsumeOptions(opts: { prefetch: number; maxAttempts: number }): void {
  if (!Number.isInteger(opts.prefetch) || opts.prefetch < 1)
    throw new TypeError('prefetch must be an integer >= 1');
  if (!Number.isInteger(opts.maxAttempts) || opts.maxAttempts < 1) {
    throw new TypeError('maxAttempts must be an integer >= 1');
  }
}

function nonNegativeInteger(value: unknown): number | undefined {
  const n = typeof value === 'bigint' ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

export function readAttempt(headers: Record<string, unknown>): number {
  return nonNegativeInteger(headers[ATTEMPT_HEADER]) ?? 0;
}

export function readDeliveryCount(headers: Record<string, unknown>): number | undefined {
  const count = nonNegativeInteger(headers[DELIVERY_COUNT_HEADER]);
  return count === undefined || count === 0 ? undefined : count;
}

/**
 * The request id a message carries (REQUEST_ID_HEADER), when it is one the HTTP layer would have kept: another
 * producer's header is not put on our lines as it is.
 */
export function readRequestId(headers: Record<string, unknown>): string | undefined {
  const id = headers[REQUEST_ID_HEADER];
  return isPlainRequestId(id) ? id : undefined;
}

/** Headers the broker manages itself and rejects or overwrites when we republish. */
function ownHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  const copy = { ...headers };
  delete copy[DELIVERY_COUNT_HEADER];
  return copy;
}

/** The headers of a released message's copy: as it came, but for those the broker sets on each delivery. */
export function releaseHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  return ownHeaders(headers);
}

export function retryHeaders(
  headers: Record<string, unknown>,
  queue: string,
  nextAttempt: number,
  reason: string,
): Record<string, unknown> {
  return {
    ...ownHeaders(headers),
    [ATTEMPT_HEADER]: nextAttempt,
    [RETRY_REASON_HEADER]: reason,
    [SOURCE_QUEUE_HEADER]: queue,
  };
}

export function deadLetterHeaders(
  headers: Record<string, unknown>,
  queue: string,
  attempt: number,
  reason: string,
): Record<string, unknown> {
  return {
    ...ownHeaders(headers),
    [ATTEMPT_HEADER]: attempt,
    [DEAD_LETTER_REASON_HEADER]: reason,
    [SOURCE_QUEUE_HEADER]: queue,
  };
}

/**
 * Why a message sits in a dead-letter queue: the handler's reason when a handler sent it there, or
 * the broker's (for example `delivery_limit` for a message that kept crashing its consumers).
 */
export function deadLetterReason(delivery: Pick<Delivery, 'headers'>): string | undefined {
  const own = delivery.headers[DEAD_LETTER_REASON_HEADER];
  if (typeof own === 'string') return own;
  const deaths = delivery.headers['x-death'];
  if (Array.isArray(deaths)) {
    const latest: unknown = deaths[0];
    if (typeof latest === 'object' && latest !== null) {
      const reason = (latest as { reason?: unknown }).reason;
      if (typeof reason === 'string') return reason;
    }
  }
  return undefined;
}
