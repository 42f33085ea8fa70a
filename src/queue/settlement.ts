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

/**
 * On the copy a release puts back in its queue (the RabbitMQ driver; the in-process one puts the message itself
 * back): the delivery count of the delivery that was released, that is the failed deliveries before it (returns
 * without an ack: a handler that threw, a crash, a lost connection), those carried over from earlier releases
 * included. The release itself is not one. To RabbitMQ the copy is a new message whose x-delivery-count starts again
 * at 0: readDeliveryCount adds this in, and the driver dead-letters the copy itself where the queue's delivery limit
 * would have stopped the message had it not been released. Retry and dead-letter copies drop it: like
 * x-delivery-count, their count starts afresh.
 */
export const PRIOR_DELIVERIES_HEADER = 'x-prior-deliveries';

/**
 * The dead-letter reason of a message that failed more often than its queue's delivery limit allows: RabbitMQ's own
 * in `x-death`, and ours when a driver does it (see PRIOR_DELIVERIES_HEADER).
 */
export const DELIVERY_LIMIT_REASON = 'delivery_limit';

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

/** Failed deliveries before the message's last release (PRIOR_DELIVERIES_HEADER); 0 when it was never released. */
export function readPriorDeliveries(headers: Record<string, unknown>): number {
  return nonNegativeInteger(headers[PRIOR_DELIVERIES_HEADER]) ?? 0;
}

/** Failed deliveries so far: the broker's count on this queue plus those before the releases; undefined for none. */
export function readDeliveryCount(headers: Record<string, unknown>): number | undefined {
  const count = (nonNegativeInteger(headers[DELIVERY_COUNT_HEADER]) ?? 0) + readPriorDeliveries(headers);
  return count === 0 ? undefined : count;
}

/**
 * Whether a delivery has failed as often as `limit` allows (undefined: its queue has none), so that failing once
 * more must dead-letter it: a quorum queue dead-letters a message once its x-delivery-count would pass the limit.
 */
export function atDeliveryLimit(headers: Record<string, unknown>, limit: number | undefined): boolean {
  return limit !== undefined && (readDeliveryCount(headers) ?? 0) >= limit;
}

/**
 * The request id a message carries (REQUEST_ID_HEADER), when it is one the HTTP layer would have kept: another
 * producer's header is not put on our lines as it is.
 */
export function readRequestId(headers: Record<string, unknown>): string | undefined {
  const id = headers[REQUEST_ID_HEADER];
  return isPlainRequestId(id) ? id : undefined;
}

/**
 * Without the delivery counts: x-delivery-count, which the broker manages itself and rejects or overwrites when we
 * republish, and ours carried across releases (a copy that is not a release starts counting afresh).
 */
function ownHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  const copy = { ...headers };
  delete copy[DELIVERY_COUNT_HEADER];
  delete copy[PRIOR_DELIVERIES_HEADER];
  return copy;
}

/**
 * The headers of a released message's copy: as it came, but for those the broker sets on each delivery, and with
 * the delivery's count carried over (PRIOR_DELIVERIES_HEADER) when it had failed before.
 */
export function releaseHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  const copy = ownHeaders(headers);
  const count = readDeliveryCount(headers);
  if (count !== undefined) copy[PRIOR_DELIVERIES_HEADER] = count;
  return copy;
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
