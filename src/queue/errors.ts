/**
 * Publish failures callers can tell apart: every one of them means "the broker did not take
 * responsibility for this message", so an outbox keeps the row and tries again later.
 */
export type QueueErrorCode = 'unavailable' | 'nacked' | 'timeout' | 'unroutable' | 'channel-closed';

export class QueueError extends Error {
  override readonly name: string = 'QueueError';

  constructor(
    readonly code: QueueErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The broker is not connected (outage, not started yet, or closed). */
export class BrokerUnavailableError extends QueueError {
  override readonly name = 'BrokerUnavailableError';

  constructor(message = 'message broker is not connected', options?: { cause?: unknown }) {
    super('unavailable', message, options);
  }
}

/** The broker answered but did not confirm the message. */
export class PublishError extends QueueError {
  override readonly name = 'PublishError';
}
