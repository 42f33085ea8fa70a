/**
 * What a team consuming the service's RabbitMQ messages actually receives, held against the contract: real
 * flows (a sync refund, async refunds that succeed, fail at the bank and are given up by the worker, Stripe's
 * own webhooks, a refund made in the dashboard) on the real service, every message they publish read back from
 * RabbitMQ and checked against its schema in openapi.yaml and its documented AMQP properties. API keys are on,
 * with two owners that both use the request id `order-1`, as two shops sharing the service would.
 */
import { connect, type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validate } from '../helpers/contract.js';
import { rabbitReady, until, useRig } from '../webhooks/support/rig.js';
import { RABBIT_URL } from '../queue/support/rabbit.js';

const rabbit = await rabbitReady('published messages against the contract');

const KEY_A = `psk_${'a'.repeat(40)}`;
const KEY_B = `psk_${'b'.repeat(40)}`;
const SCOPES = 'payments:write,payments:read,refunds:write,refunds:read';

interface Published {
  queue: string;
  exchange: string;
  routingKey: string;
  messageId: unknown;
  contentType: unknown;
  persistent: boolean;
  headers: Record<string, unknown>;
  text: string;
}

type Json = Record<string, unknown>;

/** The message's property violations and its body checked against `schema`; body null when it is not JSON. */
function checked(m: Published, schema: string): { out: string[]; body: Json | null } {
  const out = propertyViolations(m);
  let body: Json;
  try {
    body = JSON.parse(m.text) as Json;
  } catch {
    return { out: [...out, 'body is not JSON'], body: null };
  }
  out.push(...validate(`#/components/schemas/${schema}`, body).map((e) => `body ${e}`));
  return { out, body };
}

/** How a message on the responses queue contradicts RefundOutcomeMessage and its documented properties. */
function outcomeViolations(m: Published): string[] {
  const { out, body } = checked(m, 'RefundOutcomeMessage');
  if (!body) return out;
  // `<owner>/<request_id>#<status>#<time of the change>` (no `<owner>/` when the owner is null), from the body.
  const id = String(m.messageId);
  const owner = typeof body.owner === 'string' ? `${body.owner}/` : '';
  const prefix = `${owner}${String(body.request_id)}#${String(body.status)}#`;
  if (!id.startsWith(prefix) || Number.isNaN(Date.parse(id.slice(prefix.length))))
    out.push(`message_id ${id} is not [<owner>/]<request_id>#<status>#<time> of its body`);
  return out;
}

/** How a message from the `stripe.events` exchange contradicts StripeEventMessage. */
function eventViolations(m: Published): string[] {
  const { out, body } = checked(m, 'StripeEventMessage');
  if (!body) return out;
  if (m.messageId !== body.id) out.push(`message_id ${String(m.messageId)} is not the event id`);
  if (m.routingKey !== body.type) out.push(`routing key ${m.routingKey} is not the event type`);
  if (m.text.includes('client_secret')) out.push('carries a client_secret');
  return out;
}

/** How a message on the refund requests' dead-letter queue contradicts RefundRequestMessage. */
function requestViolations(m: Published): string[] {
  return checked(m, 'RefundRequestMessage').out;
}

function propertyViolations(m: Published): string[] {
  const out: string[] = [];
  if (!m.persistent) out.push('not persistent');
  if (m.contentType !== 'application/json') out.push(`content_type ${String(m.contentType)}`);
  if (typeof m.messageId !== 'string' || m.messageId === '') out.push('no message_id');
  return out.map((e) => `${m.queue} ${String(m.messageId)}: ${e}`);
}

describe.skipIf(!rabbit)('messages published to RabbitMQ match the contract', () => {
  const rig = useRig('sqlite', 'published', {
    deliverWebhooks: true,
    env: {
      API_AUTH: 'on',
      API_KEYS: `shop-a|${SCOPES}|${KEY_A} shop-b|${SCOPES}|${KEY_B}`,
      RATE_LIMIT_PER_MINUTE: '0',
      WORKER_MAX_ATTEMPTS: '2',
    },
  });
  let events: string;
  let amqp: ChannelModel;
  let ch: Channel;
  const seen: Published[] = [];

  async function take(queue: string): Promise<Published[]> {
    const out: Published[] = [];
    for (;;) {
      const msg: GetMessage | false = await ch.get(queue, { noAck: true });
      if (msg === false) break;
      out.push({
        queue,
        exchange: msg.fields.exchange,
        routingKey: msg.fields.routingKey,
        messageId: msg.properties.messageId,
        contentType: msg.properties.contentType,
        persistent: msg.properties.deliveryMode === 2,
        headers: (msg.properties.headers ?? {}) as Record<string, unknown>,
        text: msg.content.toString('utf8'),
      });
    }
    seen.push(...out);
    return out;
  }

  const outcomes = () =>
    seen.filter((m) => m.queue === rig.topology.responses).map((m) => JSON.parse(m.text) as Json);

  async function api(key: string, path: string, body?: unknown, requestId?: string) {
    const res = await fetch(`${rig.svc.url}${path}`, {
      method: body === undefined ? 'GET' : 'POST',
      headers: {
        authorization: `Bearer ${key}`,
        'content-type': 'application/json',
        ...(requestId === undefined ? {} : { 'x-request-id': requestId }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, json: (await res.json()) as Json };
  }

  async function paid(key: string, card = 'pm_card_visa', amount = 10_000): Promise<string> {
    const res = await api(key, '/payment-intent', {
      amount,
      currency: 'sgd',
      payment_method: card,
      confirm: true,
    });
    expect(res.status, JSON.stringify(res.json)).toBe(200);
    return res.json.paymentIntentId as string;
  }

  /** Waits until the responses queue has carried an outcome for `requestId` in `status`. */
  async function outcome(requestId: string, status: string): Promise<Json> {
    const find = () => outcomes().find((o) => o.request_id === requestId && o.status === status);
    try {
      return await until(async () => {
        await take(rig.topology.responses);
        return find();
      }, `${status} outcome of ${requestId}`);
    } catch (err) {
      throw new Error(`${(err as Error).message}; outcomes so far: ${JSON.stringify(outcomes())}`);
    }
  }

  async function faults(config: Json | null): Promise<void> {
    const res = await fetch(`${rig.sandbox.url}/_sandbox/faults`, {
      method: config ? 'POST' : 'DELETE',
      headers: { 'content-type': 'application/json' },
      ...(config ? { body: JSON.stringify(config) } : {}),
    });
    expect(res.ok).toBe(true);
  }

  beforeAll(async () => {
    events = await rig.subscribe('#');
    amqp = await connect(RABBIT_URL);
    amqp.on('error', () => {});
    ch = await amqp.createChannel();
    ch.on('error', () => {});
  });

  afterAll(async () => {
    await amqp?.close().catch(() => {});
  });

  it('a sync refund, async refunds that succeed or fail, and webhooks publish only what the contract says', async () => {
    // A sync refund, and two owners' async refunds under the same request id.
    const piA = await paid(KEY_A);
    const sync = await api(KEY_A, '/refund', { payment_intent_id: piA, amount: 1_000 }, 'req-sync-refund');
    expect(sync.status).toBe(200);
    expect(
      (
        await api(
          KEY_A,
          '/refund-async',
          { payment_intent_id: piA, amount: 2_000, request_id: 'order-1' },
          'req-order-1-shop-a',
        )
      ).status,
    ).toBe(202);
    const piB = await paid(KEY_B);
    expect(
      (await api(KEY_B, '/refund-async', { payment_intent_id: piB, amount: 3_000, request_id: 'order-1' }))
        .status,
    ).toBe(202);

    // An async refund the customer's bank returns: succeeded, then failed (through Stripe's webhook).
    const bounced = await paid(KEY_A, 'pm_card_refundFail');
    expect(
      (await api(KEY_A, '/refund-async', { payment_intent_id: bounced, request_id: 'order-bounced' })).status,
    ).toBe(202);
    const bouncing = await outcome('order-bounced', 'succeeded');
    await rig.settleRefund(bouncing.refund_id as string);

    // An async refund the worker gives up on: Stripe refuses to create refunds, so it is dead-lettered.
    await faults({ error_rate: 1, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    const refused = await paid(KEY_A);
    expect(
      (await api(KEY_A, '/refund-async', { payment_intent_id: refused, request_id: 'order-refused' })).status,
    ).toBe(202);
    await outcome('order-refused', 'failed');
    await faults(null);

    // A refund made in the Stripe dashboard, known to the service only through its webhooks.
    const dashboard = await rig.dashboard.refunds.create({ payment_intent: piB, amount: 500 });

    await outcome(`${String(sync.json.request_id)}`, 'succeeded');
    const both = await until(async () => {
      await take(rig.topology.responses);
      const found = outcomes().filter((o) => o.request_id === 'order-1' && o.status === 'succeeded');
      return found.length === 2 ? found : undefined;
    }, 'both owners’ order-1 outcomes');
    // A consumer tells the two shops' `order-1` apart.
    expect(both.map((o) => [o.owner, o.payment_intent_id]).sort()).toEqual([
      ['shop-a', piA],
      ['shop-b', piB],
    ]);
    await outcome('order-bounced', 'failed');
    await outcome(`stripe:${dashboard.id}`, 'succeeded');
    await rig.settled();

    await take(rig.topology.responses);
    await until(async () => {
      await take(rig.topology.deadLetter);
      return seen.some((m) => m.queue === rig.topology.deadLetter);
    }, 'the dead-lettered request');
    const allEvents = await take(events);
    const responseDeadLetters = await take(`${rig.topology.responses}.dlq`);

    const outcomeMessages = seen.filter((m) => m.queue === rig.topology.responses);
    const deadLetters = seen.filter((m) => m.queue === rig.topology.deadLetter);
    expect(outcomeMessages.length).toBeGreaterThanOrEqual(7);
    expect(deadLetters.length).toBeGreaterThanOrEqual(1);
    expect(allEvents.map((m) => m.routingKey)).toEqual(
      expect.arrayContaining([
        'payment_intent.succeeded',
        'refund.created',
        'refund.updated',
        'refund.failed',
      ]),
    );
    expect(responseDeadLetters).toEqual([]);

    expect({
      outcomes: outcomeMessages.flatMap(outcomeViolations),
      requests: deadLetters.flatMap(requestViolations),
      events: allEvents.flatMap(eventViolations),
    }).toEqual({ outcomes: [], requests: [], events: [] });
    // An outcome names the HTTP request that asked for the refund (the request itself or the worker, from its
    // message); one Stripe's webhooks alone settled (the dashboard refund) names none.
    const requestIdOf = (requestId: string, owner: string | null) =>
      outcomeMessages
        .filter((m) => {
          const body = JSON.parse(m.text) as Json;
          return (
            body.request_id === requestId && (body.owner ?? null) === owner && body.status === 'succeeded'
          );
        })
        .map((m) => m.headers['x-request-id'] ?? null);
    expect(requestIdOf(String(sync.json.request_id), 'shop-a')).toEqual(['req-sync-refund']);
    expect(requestIdOf('order-1', 'shop-a')).toEqual(['req-order-1-shop-a']);
    expect(requestIdOf(`stripe:${dashboard.id}`, 'shop-b')).toEqual([null]);
    // Every outcome message id is unique: a consumer that drops repeats by message_id never drops a new outcome.
    const ids = outcomeMessages.map((m) => m.messageId);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
