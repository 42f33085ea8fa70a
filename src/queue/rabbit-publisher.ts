/**
 * One confirm channel and the bookkeeping that turns its callbacks into a promise per message:
 * resolved on the broker's ack, rejected on nack, on a mandatory return (no queue took it), on a
 * confirm timeout, or when the channel closes first.
 */
import type { ChannelModel, ConfirmChannel, Message, Options } from 'amqplib';
import type { Logger } from 'pino';
import { PublishError } from './errors.js';

export class ConfirmPublisher {
  private closed = false;
  /**
   * Returned messages by messageId/exchange/routingKey; a return always precedes its own ack. basic.return carries no
   * delivery tag (nor does amqplib tell a publish its sequence number), and an ack may be a `multiple` one confirming
   * earlier messages with it, whose callbacks amqplib calls first: with two copies of one message in flight, the
   * return of the later (the queue deleted in between) would go to the earlier, which a queue took. Hence `inFlight`.
   */
  private readonly returned = new Map<string, number>();
  /**
   * Per messageId/exchange/routingKey of a mandatory publish: settles once the last copy sent has its confirm (or
   * was never sent). A further copy waits for it, so at most one copy a return could belong to is in flight.
   */
  private readonly inFlight = new Map<string, Promise<void>>();

  private constructor(
    private readonly channel: ConfirmChannel,
    private readonly logger: Logger,
  ) {
    channel.on('error', (err: Error) =>
      logger.warn({ err }, 'RabbitMQ publish channel closed with an error'),
    );
    channel.on('close', () => {
      this.closed = true;
    });
    channel.on('return', (msg: Message) => {
      const key = returnKey(msg.properties.messageId, msg.fields.exchange, msg.fields.routingKey);
      this.returned.set(key, (this.returned.get(key) ?? 0) + 1);
    });
  }

  static async open(model: ChannelModel, logger: Logger): Promise<ConfirmPublisher> {
    return new ConfirmPublisher(await model.createConfirmChannel(), logger);
  }

  isOpen(): boolean {
    return !this.closed;
  }

  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Options.Publish,
    timeoutMs: number,
    /**
     * While it answers true the confirm timeout starts again rather than rejecting: during a resource alarm RabbitMQ
     * reads nothing of the connection, so the message is neither confirmed nor refused yet, and goes in once the alarm
     * ends. For a caller that would otherwise do something the message then duplicates (give back the delivery it is
     * a copy of); the connection closing still rejects it.
     */
    waitWhile?: () => boolean,
  ): Promise<void> {
    // Only the default exchange is mandatory: a queue that does not exist must fail the publish,
    // while a topic event that no subscriber has bound yet is legitimately dropped.
    const mandatory = exchange === '';
    const key = returnKey(options.messageId, exchange, routingKey);
    return new Promise<void>((resolve, reject) => {
      if (this.closed) {
        reject(new PublishError('channel-closed', 'publish channel is closed'));
        return;
      }
      // A copy of this message still unconfirmed (mandatory only: nothing else is returned): this one goes out after
      // its confirm. Rare (two deliveries of one refund sent to one delay queue at once), and costs one confirm's wait.
      const previous = mandatory ? this.inFlight.get(key) : undefined;
      let confirmed!: () => void;
      if (mandatory) {
        const own = new Promise<void>((r) => (confirmed = r));
        this.inFlight.set(key, own);
        void own.then(() => {
          if (this.inFlight.get(key) === own) this.inFlight.delete(key);
        });
      } else {
        confirmed = () => undefined;
      }
      let settled = false;
      const onTimeout = (): void => {
        if (waitWhile?.()) {
          timer = setTimeout(onTimeout, timeoutMs);
          return;
        }
        settled = true;
        reject(new PublishError('timeout', `no broker confirm within ${timeoutMs} ms`));
      };
      let timer = setTimeout(onTimeout, timeoutMs);

      const onConfirm = (err: unknown): void => {
        clearTimeout(timer);
        const wasReturned = this.takeReturned(key);
        confirmed();
        if (settled) return;
        settled = true;
        if (err) {
          const closed = err instanceof Error && err.message === 'channel closed';
          reject(
            closed
              ? new PublishError('channel-closed', 'channel closed before the broker confirmed', {
                  cause: err,
                })
              : new PublishError('nacked', 'broker refused the message', { cause: err }),
          );
        } else if (wasReturned) {
          reject(
            new PublishError('unroutable', `no queue named ${JSON.stringify(routingKey)} took the message`),
          );
        } else {
          resolve();
        }
      };

      const send = (): void => {
        if (settled) {
          confirmed(); // timed out while it waited for the copy before it: never sent
          return;
        }
        if (this.closed) {
          confirmed();
          clearTimeout(timer);
          settled = true;
          reject(new PublishError('channel-closed', 'publish channel is closed'));
          return;
        }
        try {
          this.channel.publish(exchange, routingKey, content, { ...options, mandatory }, onConfirm);
        } catch (err) {
          confirmed();
          clearTimeout(timer);
          settled = true;
          reject(publishFailure(err));
        }
      };
      if (previous) void previous.then(send);
      else send();
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.channel.close();
    } catch (err) {
      this.logger.debug({ err }, 'closing the publish channel failed');
    }
  }

  private takeReturned(key: string): boolean {
    const count = this.returned.get(key);
    if (count === undefined) return false;
    if (count <= 1) this.returned.delete(key);
    else this.returned.set(key, count - 1);
    return true;
  }
}

function returnKey(messageId: unknown, exchange: string, routingKey: string): string {
  return JSON.stringify([messageId ?? null, exchange, routingKey]);
}

/**
 * Why channel.publish threw. amqplib throws IllegalOperationError once the channel is closing or closed; anything
 * else it throws while encoding the frames, before writing any (a message id, routing key or exchange over 255 bytes,
 * headers too large): nothing went out and the channel is fine, but this message will never go out.
 */
function publishFailure(err: unknown): PublishError {
  return isIllegalOperation(err)
    ? new PublishError('channel-closed', 'publish channel is closed', { cause: err })
    : new PublishError('invalid', `the message cannot be published: ${reasonOf(err)}`, { cause: err });
}

function isIllegalOperation(err: unknown): boolean {
  return err instanceof Error && err.name === 'IllegalOperationError';
}

/** amqplib's words (which field is wrong and why); they never quote the message's body or headers. */
function reasonOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
