export type {
  Broker,
  ConsumeOptions,
  Consumer,
  Delivery,
  Destination,
  Handler,
  Outcome,
  PublishOptions,
  TopologyNames,
} from './types.js';
export { BrokerUnavailableError, PublishError, QueueError, type QueueErrorCode } from './errors.js';
export {
  ATTEMPT_HEADER,
  DEAD_LETTER_REASON_HEADER,
  DEFAULT_DELIVERY_LIMIT,
  DEFAULT_RETRY_DELAYS_MS,
  REQUEST_ID_HEADER,
  RETRY_REASON_HEADER,
  SOURCE_QUEUE_HEADER,
  defaultTopology,
  prefixedTopology,
  queueFamily,
  resolveTopology,
  type QueueFamily,
} from './topology.js';
export { deadLetterReason, readRequestId } from './settlement.js';
export { createRabbitBroker, type RabbitBrokerOptions } from './rabbit-broker.js';
export { createMemoryBroker, type MemoryBrokerOptions } from './memory-broker.js';
export { rabbitUrlFromEnv, type RabbitEnv } from './rabbit-url.js';
export { createRateLimiter, type RateLimiter, type RateLimiterOptions } from './rate-limiter.js';
export { topicMatches } from './topic-match.js';
