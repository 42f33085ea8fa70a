/**
 * Publish failures callers can tell apart: every one of them means "the broker did not take
 * responsibility for this message", so an outbox keeps the row. All but `invalid` may pass, and the row
 * is tried again later; `invalid` is a message the client library refuses to send as it is (a message id
 * or routing key over 255 bytes, headers too large), which no retry will change.
 */
export type QueueErrorCode =
  'unavailable' | 'nacked' | 'timeout' | 'unroutable' | 'channel-closed' | 'invalid';

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
