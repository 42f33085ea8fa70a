/**
 * Another service declares the responses queue itself before this one starts, exclusive to its connection (as
 * amqplib's `assertQueue(name, { exclusive: true })` does). RabbitMQ then refuses every other connection's
 * declare of it, passive ones included, with RESOURCE_LOCKED. The driver treated that as a failed connection
 * setup: it reconnected forever, so refunds were accepted (202) and never published, consumed or made, for as
 * long as that service stayed connected.
 */
import { connect, type Channel, type ChannelModel } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, rabbitAvailable, RABBITMQ_URL } from '../helpers/services.js';
import {
  clusterEnv,
  countsOf,
  paidIntents,
  peekRabbit,
  pgSchema,
  postRefundAsync,
  prefixedTopology,
  startInProcess,
  startStripe,
  uniqueTag,
  waitFor,
  type InProcessService,
  type PgSchema,
  type RabbitPeek,
  type StripeStandIn,
} from './support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());

describe.skipIf(!ready)('the responses queue held exclusive by another service', () => {
  const tag = uniqueTag('rq_excl');
  const topology = prefixedTopology(tag);
  let stripe: StripeStandIn;
  let db: PgSchema;
  let foreign: ChannelModel;
  let foreignChannel: Channel;
  let svc: InProcessService;
  let peek: RabbitPeek;

  beforeAll(async () => {
    stripe = await startStripe();
    db = pgSchema(tag);
    foreign = await connect(RABBITMQ_URL);
    foreignChannel = await foreign.createChannel();
    await foreignChannel.assertQueue(topology.responses, { exclusive: true });
    svc = await startInProcess({ env: clusterEnv(stripe, db, tag, { ROLE: 'all' }), db, topology });
    peek = await peekRabbit();
  });

  afterAll(async () => {
    await svc?.close();
    // The exclusive queue goes with its connection.
    await foreign?.close().catch(() => undefined);
    await peek?.deleteAll(topology);
    await peek?.close();
    await db?.drop();
    await stripe?.close();
  });

  it('refunds are still made, and their outcomes reach that service', async () => {
    const outcomes: string[] = [];
    await foreignChannel.consume(
      topology.responses,
      (msg) => {
        if (msg) outcomes.push(String(msg.properties.messageId));
      },
      { noAck: true },
    );
    const [pi] = await paidIntents(svc.url, 1, 5_000);
    const order = { request_id: `${tag}-1`, payment_intent_id: pi!, amount: 1_000 };
    await postRefundAsync(svc.url, order);

    const counts = await waitFor(
      () => countsOf(svc, [order.request_id]),
      (c) => c.succeeded === 1,
      20_000,
    );
    expect(counts).toMatchObject({ succeeded: 1, queued: 0 });
    const seen = await waitFor(
      async () => outcomes,
      (ids) => ids.some((id) => id.startsWith(`${order.request_id}#succeeded#`)),
      10_000,
    );
    expect(seen.filter((id) => id.startsWith(`${order.request_id}#succeeded#`))).toHaveLength(1);
    expect(
      svc.lines.some(
        (l) => l.includes('held exclusive by another connection') && l.includes(topology.responses),
      ),
    ).toBe(true);
  }, 60_000);

  it('once that service disconnects (its exclusive queue goes with it), outcomes go to a queue of ours again', async () => {
    await foreign.close();
    const [pi] = await paidIntents(svc.url, 1, 5_000);
    const order = { request_id: `${tag}-2`, payment_intent_id: pi!, amount: 1_000 };
    await postRefundAsync(svc.url, order);
    await waitFor(
      () => countsOf(svc, [order.request_id]),
      (c) => c.succeeded === 1,
      20_000,
    );
    const ours = await waitFor(
      async () => ((await peek.depth(topology.responses)) > 0 ? peek.drain(topology.responses) : []),
      (msgs) => msgs.some((m) => m.messageId.startsWith(`${order.request_id}#succeeded#`)),
      20_000,
    );
    expect(ours.map((m) => m.messageId)).toContainEqual(
      expect.stringMatching(`^${order.request_id}#succeeded#`),
    );
  }, 60_000);
});
