/**
 * What the service declares on the broker, described once so the RabbitMQ and in-process drivers
 * build the same queues with the same dead-letter routes.
 */
import type { TopologyNames } from './types.js';

export const defaultTopology: TopologyNames = Object.freeze({
  requests: 'stripe_refund_requests',
  responses: 'stripe_refund_responses',
  deadLetter: 'stripe_refund_requests.dlq',
  retryPrefix: 'stripe_refund_requests.retry',
  events: 'stripe.events',
});

export const DEFAULT_DELIVERY_LIMIT = 5;
export const DEFAULT_RETRY_DELAYS_MS: readonly number[] = Object.freeze([1_000, 5_000, 25_000, 120_000]);

/** Our retry counter; the broker's own x-delivery-count only counts crashes and requeues. */
export const ATTEMPT_HEADER = 'x-retry-attempt';
/** Why a message was dead-lettered by a handler (the broker records its own reasons in x-death). */
export const DEAD_LETTER_REASON_HEADER = 'x-dead-letter-reason';
/** Which queue a dead-lettered or delayed message came from. */
export const SOURCE_QUEUE_HEADER = 'x-source-queue';
/** Why the last attempt asked for a retry. */
export const RETRY_REASON_HEADER = 'x-retry-reason';
/** Set by quorum queues on redeliveries. */
export const DELIVERY_COUNT_HEADER = 'x-delivery-count';
/**
 * The X-Request-Id of the HTTP request a message was queued for (a refund request's), when there was one: kept
 * through retries and dead-lettering, and put as `reqId` on the lines about the message, so the request's id
 * finds them.
 */
export const REQUEST_ID_HEADER = 'x-request-id';

/**
 * Jitter is at most this fraction of a level's delay. Every message in one delay queue then
 * expires within [delay, delay * (1 + JITTER_RATIO)] of entering it, so a message stuck behind a
 * longer-lived head (queues only expire their head) waits at most JITTER_RATIO * delay extra.
 */
export const JITTER_RATIO = 0.1;

export interface QueueSpec {
  name: string;
  /** Redeliveries (throws, crashes) after which the broker dead-letters the message. */
  deliveryLimit?: number;
  /** Queue that receives this queue's dead-lettered (or expired) messages. */
  deadLetterTo?: string;
  /** Makes this a delay queue: messages expire after this long and move to `deadLetterTo`. */
  messageTtlMs?: number;
  /** Read by other services (which may declare it themselves, even exclusive), never consumed by this one. */
  readElsewhere?: boolean;
}

export interface RetryLevel {
  queue: string;
  delayMs: number;
}

/** The delay queues and dead-letter queue that serve one consumed queue. */
export interface QueueFamily {
  queue: string;
  deadLetter: string;
  /** Indexed by attempt - 1 (the last level repeats for later attempts). */
  levels: RetryLevel[];
}

export function resolveTopology(partial: Partial<TopologyNames> = {}): TopologyNames {
  const names = { ...defaultTopology, ...stripUndefined(partial) };
  for (const [key, value] of Object.entries(names)) {
    if (typeof value !== 'string' || value.trim() === '')
      throw new TypeError(`topology.${key} must be a non-empty string`);
  }
  return Object.freeze(names);
}

export function validateRetryDelays(delays: readonly number[] = DEFAULT_RETRY_DELAYS_MS): number[] {
  if (delays.length === 0) throw new TypeError('retryDelaysMs needs at least one level');
  for (const ms of delays) {
    if (!Number.isInteger(ms) || ms <= 0)
      throw new TypeError(`retry delay ${String(ms)} must be a positive integer (ms)`);
  }
  return [...delays];
}

export function validateDeliveryLimit(limit: number = DEFAULT_DELIVERY_LIMIT): number {
  if (!Number.isInteger(limit) || limit < 1) throw new TypeError('deliveryLimit must be an integer >= 1');
  return limit;
}

/**
 * The refund requests queue uses the configured names; any other consumed queue gets the same
 * shape under derived names (`<queue>.retry.*`, `<queue>.dlq`), so retry and dead-letter work for
 * every consumer without sending foreign messages into the refund dead-letter queue.
 */
export function queueFamily(queue: string, topology: TopologyNames, delays: readonly number[]): QueueFamily {
  const isRequests = queue === topology.requests;
  const retryPrefix = isRequests ? topology.retryPrefix : `${queue}.retry`;
  return {
    queue,
    deadLetter: isRequests ? topology.deadLetter : `${queue}.dlq`,
    // The delay is part of the name so that changing the schedule creates new queues instead of
    // failing to redeclare old ones with a different TTL; old ones drain on their own.
    levels: delays.map((delayMs) => ({ queue: `${retryPrefix}.${delayMs}ms`, delayMs })),
  };
}

export function levelForAttempt(family: QueueFamily, nextAttempt: number): RetryLevel {
  const index = Math.min(Math.max(nextAttempt - 1, 0), family.levels.length - 1);
  const level = family.levels[index];
  if (!level) throw new Error(`queue ${family.queue} has no retry levels`);
  return level;
}

/** Per-message expiration: spreads a burst of failures so they do not all retry at the same instant. */
export function jitteredDelay(delayMs: number, random: () => number = Math.random): number {
  return delayMs + Math.floor(random() * delayMs * JITTER_RATIO);
}

/** Queue-level TTL: the ceiling of the jitter, and a backstop for messages published without expiration. */
export function levelTtl(delayMs: number): number {
  return delayMs + Math.ceil(delayMs * JITTER_RATIO);
}

export function workQueueSpec(name: string, deadLetter: string, deliveryLimit: number): QueueSpec {
  return { name, deliveryLimit, deadLetterTo: deadLetter };
}

export function familySpecs(family: QueueFamily): QueueSpec[] {
  const unique = new Map<string, QueueSpec>();
  for (const level of family.levels) {
    unique.set(level.queue, {
      name: level.queue,
      messageTtlMs: levelTtl(level.delayMs),
      deadLetterTo: family.queue,
    });
  }
  return [{ name: family.deadLetter }, ...unique.values()];
}

/** Everything declared on every (re)connect. */
export function baseTopologySpecs(
  topology: TopologyNames,
  delays: readonly number[],
  deliveryLimit: number,
): QueueSpec[] {
  const requests = queueFamily(topology.requests, topology, delays);
  const responses = queueFamily(topology.responses, topology, delays);
  return [
    workQueueSpec(topology.requests, requests.deadLetter, deliveryLimit),
    ...familySpecs(requests),
    // Responses are consumed by other services; bounding their redeliveries too means a poison
    // outcome message cannot spin forever in someone else's consumer either.
    { ...workQueueSpec(topology.responses, responses.deadLetter, deliveryLimit), readElsewhere: true },
    { name: responses.deadLetter, readElsewhere: true },
  ];
}

/**
 * RabbitMQ arguments for a spec. Everything is a quorum queue; queues that dead-letter use the
 * at-least-once strategy (RabbitMQ >= 3.10), which needs `x-overflow: reject-publish`: the source
 * queue keeps a message until the target queue has confirmed it, instead of dropping it when the
 * hand-over fails.
 */
export function quorumArguments(spec: QueueSpec): Record<string, unknown> {
  const args: Record<string, unknown> = { 'x-queue-type': 'quorum' };
  if (spec.deliveryLimit !== undefined) args['x-delivery-limit'] = spec.deliveryLimit;
  if (spec.messageTtlMs !== undefined) args['x-message-ttl'] = spec.messageTtlMs;
  if (spec.deadLetterTo !== undefined) {
    args['x-dead-letter-exchange'] = '';
    args['x-dead-letter-routing-key'] = spec.deadLetterTo;
    args['x-dead-letter-strategy'] = 'at-least-once';
    args['x-overflow'] = 'reject-publish';
  }
  return args;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** `QUEUE_PREFIX=staging` → `staging.stripe_refund_requests`, ... : several deployments can share one broker. */
export function prefixedTopology(prefix: string | null): Partial<TopologyNames> {
  if (!prefix) return {};
  return Object.fromEntries(
    Object.entries(defaultTopology).map(([role, name]) => [role, `${prefix}.${name}`]),
  ) as Partial<TopologyNames>;
}
