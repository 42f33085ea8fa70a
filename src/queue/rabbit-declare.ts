/**
 * Declaring queues, exchanges and bindings on one RabbitMQ connection. A queue that already exists
 * with other arguments (for example a classic queue left by an older deployment), or a queue other
 * services read that one of them holds exclusive, is used as it is with a loud error, rather than
 * failing every reconnect forever.
 */
import type { Channel, ChannelModel } from 'amqplib';
import type { Logger } from 'pino';
import { quorumArguments, type QueueSpec } from './topology.js';

const PRECONDITION_FAILED = 406;
const RESOURCE_LOCKED = 405;

/**
 * RabbitMQ opened the connection but refused to declare a queue or exchange of ours (held exclusive by another
 * connection, a user who may not configure it): neither an outage nor a matter of where RabbitMQ is, which is what a
 * start that cannot finish otherwise suggests. `reason` is RabbitMQ's own (amqplib's words around it).
 */
export class TopologyRefusedError extends Error {
  override readonly name = 'TopologyRefusedError';

  constructor(
    readonly what: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`RabbitMQ refused to declare ${what}: ${reason}`, options);
  }
}

/** A refusal of the server (a channel closed with a reply code), as TopologyRefusedError; anything else as it is. */
function refusal(err: unknown, what: string): unknown {
  if (typeof replyCode(err) !== 'number') return err; // the connection went, not a refusal
  return new TopologyRefusedError(what, err instanceof Error ? err.message : String(err), { cause: err });
}

export async function openChannel(model: ChannelModel, logger: Logger, purpose: string): Promise<Channel> {
  const channel = await model.createChannel();
  // A channel error is also reported through the failing call; this listener only keeps the
  // 'error' event from crashing the process.
  channel.on('error', (err: Error) =>
    logger.debug({ err, purpose }, 'RabbitMQ channel closed with an error'),
  );
  return channel;
}

export async function closeQuietly(channel: Channel | null | undefined): Promise<void> {
  if (!channel) return;
  try {
    await channel.close();
  } catch {
    // already closed by the server or with the connection
  }
}

function replyCode(err: unknown): unknown {
  return typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
}

function isPreconditionFailed(err: unknown): boolean {
  return replyCode(err) === PRECONDITION_FAILED;
}

/**
 * Declares `specs`; answers the names of those that exist with other arguments and are used as they are (RabbitMQ
 * then enforces none of the spec's arguments: a classic queue counts no deliveries and stops no poison message).
 */
export async function declareQueues(
  model: ChannelModel,
  specs: readonly QueueSpec[],
  logger: Logger,
): Promise<string[]> {
  const asTheyAre: string[] = [];
  let channel = await openChannel(model, logger, 'declare');
  try {
    for (const spec of specs) {
      try {
        await channel.assertQueue(spec.name, { durable: true, arguments: quorumArguments(spec) });
      } catch (err) {
        if (spec.readElsewhere && replyCode(err) === RESOURCE_LOCKED) {
          // Another service's connection declared it exclusive. Even a passive declare is refused, but publishing
          // to it works; it goes with that connection, and the next publish, unroutable, declares it again. Thrown,
          // this failed every (re)connect while that connection lived: no refund was published or consumed.
          logger.error(
            { err, queue: spec.name },
            'queue is held exclusive by another connection; publishing to it as it is',
          );
          channel = await openChannel(model, logger, 'declare');
          continue;
        }
        if (!isPreconditionFailed(err)) throw refusal(err, `queue ${JSON.stringify(spec.name)}`);
        logger.error(
          { err, queue: spec.name, wanted: quorumArguments(spec) },
          'queue exists with different arguments; using it as it is (apply a policy or recreate it to get the configured ones)',
        );
        channel = await openChannel(model, logger, 'declare');
        await channel.checkQueue(spec.name);
        asTheyAre.push(spec.name);
      }
    }
  } finally {
    await closeQuietly(channel);
  }
  return asTheyAre;
}

export async function declareTopicExchange(
  model: ChannelModel,
  exchange: string,
  logger: Logger,
): Promise<void> {
  let channel = await openChannel(model, logger, 'declare');
  try {
    await channel.assertExchange(exchange, 'topic', { durable: true });
  } catch (err) {
    if (!isPreconditionFailed(err)) throw refusal(err, `exchange ${JSON.stringify(exchange)}`);
    logger.error({ err, exchange }, 'exchange exists with a different type or flags; using it as it is');
    channel = await openChannel(model, logger, 'declare');
    await channel.checkExchange(exchange);
  } finally {
    await closeQuietly(channel);
  }
}

export async function bindQueue(
  model: ChannelModel,
  binding: { queue: string; exchange: string; pattern: string },
  logger: Logger,
): Promise<void> {
  const channel = await openChannel(model, logger, 'bind');
  try {
    await channel.bindQueue(binding.queue, binding.exchange, binding.pattern);
  } finally {
    await closeQuietly(channel);
  }
}
