/**
 * The behaviour both drivers promise, run against the real RabbitMQ and the in-process driver.
 */
import { describe, expect, it } from 'vitest';
import {
  ATTEMPT_HEADER,
  BrokerUnavailableError,
  RETRY_REASON_HEADER,
  SOURCE_QUEUE_HEADER,
  createMemoryBroker,
  createRabbitBroker,
  deadLetterReason,
  queueFamily,
  type Broker,
  type Delivery,
  type Outcome,
  type TopologyNames,
} from '../../src/queue/index.js';
import {
  RABBIT_URL,
  eventually,
  gate,
  probeRabbit,
  topologyFor,
  uniquePrefix,
  brokersOfFile,
} from './support/rabbit.js';

const filePrefix = uniquePrefix('contract');
const rabbit = await probeRabbit('queue broker contract (rabbitmq)');

const RETRY_DELAYS = [600, 1_200];
const DELIVERY_LIMIT = 2;

interface Driver {
  kind: 'rabbitmq' | 'memory';
  available: boolean;
  make(topology: TopologyNames, name: string): Broker;
}

const drivers: Driver[] = [
  {
    kind: 'rabbitmq',
    available: rabbit.ok,
    make: (topology, name) =>
      createRabbitBroker({
        url: RABBIT_URL,
        topology,
        deliveryLimit: DELIVERY_LIMIT,
        retryDelaysMs: RETRY_DELAYS,
        connectionName: name,
        drainTimeoutMs: 10_000,
      }),
  },
  {
    kind: 'memory',
    available: true,
    make: (topology) =>
      createMemoryBroker({
        topology,
        deliveryLimit: DELIVERY_LIMIT,
        retryDelaysMs: RETRY_DELAYS,
        drainTimeoutMs: 10_000,
      }),
  },
];

const brokers = brokersOfFile(filePrefix, rabbit);

/** Consumes `queue`, records every delivery, and answers with `decide` (ack by default). */
async function record<T = unknown>(
  broker: Broker,
  queue: string,
  decide: (d: Delivery<T>) => Outcome | Promise<Outcome> = () => ({ kind: 'ack' }),
  opts = { prefetch: 5, maxAttempts: 3 },
): Promise<Delivery<T>[]> {
  const seen: Delivery<T>[] = [];
  await broker.consume<T>(
    queue,
    async (d) => {
      seen.push(d);
      return decide(d);
    },
    opts,
  );
  return seen;
}

describe.each(drivers)('$kind broker', (driver) => {
  async function startBroker(): Promise<{ broker: Broker; names: TopologyNames; prefix: string }> {
    const prefix = brokers.prefix(driver.kind);
    const names = topologyFor(prefix);
    const broker = driver.make(names, prefix);
    brokers.keep(broker);
    await broker.start();
    return { broker, names, prefix };
  }

  describe.skipIf(!driver.available)('contract', () => {
    it('delivers a published message with its body, id and headers, then forgets it once acked', async () => {
      const { broker, names } = await startBroker();
      expect(broker.kind).toBe(driver.kind);
      expect(broker.isConnected()).toBe(true);
      const seen = await record<{ amount: number }>(broker, names.requests);

      await broker.publish(
        { queue: names.requests },
        { amount: 1200 },
        { messageId: 'rt-1', headers: { tenant: 't1' } },
      );

      const [delivery] = await eventually(() => seen.length === 1 && seen, 'the delivery');
      expect(delivery).toMatchObject({
        body: { amount: 1200 },
        messageId: 'rt-1',
        attempt: 0,
        redelivered: false,
        deliveryCount: undefined,
      });
      expect(delivery?.headers.tenant).toBe('t1');
      await eventually(async () => (await broker.queueDepth(names.requests)) === 0, 'an empty queue');
    });

    it('reports ready messages as queue depth, and null for a queue that does not exist', async () => {
      const { broker, names } = await startBroker();
      for (let i = 0; i < 3; i++)
        await broker.publish({ queue: names.requests }, { i }, { messageId: `d-${i}` });
      expect(await broker.queueDepth(names.requests)).toBe(3);
      expect(await broker.queueDepth(`${names.requests}.missing`)).toBeNull();
    });

    it('rejects a publish to a queue that does not exist instead of losing the message', async () => {
      const { broker, names } = await startBroker();
      await expect(
        broker.publish({ queue: `${names.requests}.nope` }, { x: 1 }, { messageId: 'lost-1' }),
      ).rejects.toMatchObject({ code: 'unroutable' });
      // The broker stays usable afterwards.
      await broker.publish({ queue: names.requests }, { x: 2 }, { messageId: 'ok-1' });
      expect(await broker.queueDepth(names.requests)).toBe(1);
    });

    it('refuses to consume a queue that does not exist, without creating its retry queues', async () => {
      const { broker, names } = await startBroker();
      const missing = `${names.requests}.missing`;
      await expect(
        broker.consume(missing, async () => ({ kind: 'ack' }), { prefetch: 1, maxAttempts: 1 }),
      ).rejects.toThrow();
      expect(await broker.queueDepth(`${missing}.dlq`)).toBeNull();
      // The broker is still fine for everything else.
      await broker.publish({ queue: names.requests }, {}, { messageId: 'still-ok' });
      expect(await broker.queueDepth(names.requests)).toBe(1);
    });

    it('rejects publishing before start and after close', async () => {
      const prefix = brokers.prefix(driver.kind);
      const names = topologyFor(prefix);
      const broker = driver.make(names, prefix);
      await expect(
        broker.publish({ queue: names.requests }, {}, { messageId: 'early' }),
      ).rejects.toBeInstanceOf(BrokerUnavailableError);
      const states: boolean[] = [];
      broker.onStateChange((connected) => states.push(connected));
      await broker.start();
      await broker.close();
      expect(states).toEqual([true, false]);
      await expect(
        broker.publish({ queue: names.requests }, {}, { messageId: 'late' }),
      ).rejects.toBeInstanceOf(BrokerUnavailableError);
    });

    it('retries through the delay queue and comes back with attempt + 1', async () => {
      const { broker, names } = await startBroker();
      const level1 = queueFamily(names.requests, names, RETRY_DELAYS).levels[0]?.queue ?? '';
      let firstSettled = 0;
      const seen = await record(broker, names.requests, (d) => {
        if (d.attempt === 0) {
          firstSettled = Date.now();
          return { kind: 'retry', reason: 'stripe rate limited' };
        }
        return { kind: 'ack' };
      });

      await broker.publish({ queue: names.requests }, { refund: 'r1' }, { messageId: 'retry-1' });

      // While it waits, the message sits in the first delay queue, not in the work queue.
      await eventually(async () => (await broker.queueDepth(level1)) === 1, 'the message in the delay queue');
      expect(await broker.queueDepth(names.requests)).toBe(0);

      await eventually(() => seen.length === 2, 'the retried delivery');
      const [first, second] = seen;
      expect(first?.attempt).toBe(0);
      expect(second).toMatchObject({ messageId: 'retry-1', body: { refund: 'r1' }, attempt: 1 });
      expect(second?.headers[RETRY_REASON_HEADER]).toBe('stripe rate limited');
      // The delay is a floor set by the broker, not a speed goal: it cannot come back earlier.
      expect(Date.now() - firstSettled).toBeGreaterThanOrEqual(RETRY_DELAYS[0] ?? 0);
      expect(await broker.queueDepth(level1)).toBe(0);
    });

    it('dead-letters a message whose retries are exhausted, with the reason', async () => {
      const { broker, names } = await startBroker();
      const attempts = await record(broker, names.requests, () => ({ kind: 'retry', reason: 'stripe 503' }), {
        prefetch: 1,
        maxAttempts: 2,
      });
      const dead = await record(broker, names.deadLetter);

      await broker.publish({ queue: names.requests }, { refund: 'r2' }, { messageId: 'exhaust-1' });

      const [letter] = await eventually(() => dead.length === 1 && dead, 'the dead letter');
      expect(attempts.map((d) => d.attempt)).toEqual([0, 1]);
      expect(letter).toMatchObject({ messageId: 'exhaust-1', body: { refund: 'r2' } });
      expect(letter && deadLetterReason(letter)).toBe('retries exhausted after 2 attempts: stripe 503');
      expect(letter?.headers[SOURCE_QUEUE_HEADER]).toBe(names.requests);
      expect(letter?.headers[ATTEMPT_HEADER]).toBe(1);
    });

    it("moves a 'dead-letter' outcome to the dead-letter queue at once", async () => {
      const { broker, names } = await startBroker();
      const attempts = await record(broker, names.requests, () => ({
        kind: 'dead-letter',
        reason: 'refund exceeds the remaining amount',
      }));
      const dead = await record(broker, names.deadLetter);

      await broker.publish({ queue: names.requests }, { refund: 'r3' }, { messageId: 'dl-1' });

      const [letter] = await eventually(() => dead.length === 1 && dead, 'the dead letter');
      expect(attempts).toHaveLength(1);
      expect(letter && deadLetterReason(letter)).toBe('refund exceeds the remaining amount');
      expect(letter?.messageId).toBe('dl-1');
      expect(await broker.queueDepth(names.requests)).toBe(0);
    });

    it('stops a poison message that always crashes its handler after the delivery limit', async () => {
      const { broker, names } = await startBroker();
      const attempts = await record(broker, names.requests, () => {
        throw new Error('handler bug');
      });
      const dead = await record(broker, names.deadLetter);

      await broker.publish({ queue: names.requests }, { refund: 'poison' }, { messageId: 'poison-1' });

      const [letter] = await eventually(() => dead.length === 1 && dead, 'the poison message in the DLQ');
      // The first delivery plus one redelivery per allowed return.
      expect(attempts).toHaveLength(DELIVERY_LIMIT + 1);
      expect(attempts.map((d) => d.redelivered)).toEqual([false, true, true]);
      expect(attempts.map((d) => d.deliveryCount)).toEqual([undefined, 1, 2]);
      expect(attempts.every((d) => d.attempt === 0)).toBe(true);
      expect(letter?.messageId).toBe('poison-1');
      expect(letter && deadLetterReason(letter)).toBe('delivery_limit');
      expect(await broker.queueDepth(names.requests)).toBe(0);
    });

    it("gives a 'release' outcome back to the queue as it came, never counted against the delivery limit", async () => {
      const { broker, names } = await startBroker();
      // Released more often than the delivery limit allows returns, then acked: a handler that was stopped before
      // it did anything (the worker shutting down) must not use the limit up, which would dead-letter the message.
      const releases = DELIVERY_LIMIT + 2;
      let handed = 0;
      const seen = await record(broker, names.requests, (): Outcome =>
        ++handed <= releases ? { kind: 'release' } : { kind: 'ack' },
      );
      const dead = await record(broker, names.deadLetter);

      await broker.publish(
        { queue: names.requests },
        { refund: 'later' },
        { messageId: 'released-1', headers: { tenant: 't1' } },
      );

      await eventually(() => seen.length === releases + 1, 'the delivery after the releases');
      await eventually(async () => (await broker.queueDepth(names.requests)) === 0, 'an empty queue');
      expect(seen.map((d) => [d.messageId, d.attempt, d.deliveryCount, d.headers.tenant])).toEqual(
        Array.from({ length: releases + 1 }, () => ['released-1', 0, undefined, 't1']),
      );
      expect(dead).toEqual([]);
    });

    it('keeps counting failed deliveries across releases, and dead-letters at the same delivery as without them', async () => {
      const { broker, names } = await startBroker();
      // Fails, is released twice (a worker stopping twice while the message waited for the rate limiter), then fails
      // for good. The releases add nothing to the count, and they take nothing from it: the message is stopped at the
      // delivery limit's last delivery, as a message that only failed would be.
      const script: ('fail' | 'release')[] = ['fail', 'release', 'release', 'fail', 'fail', 'fail'];
      let handed = 0;
      const seen = await record(broker, names.requests, (): Outcome => {
        if (script[handed++] === 'release') return { kind: 'release' };
        throw new Error('handler bug');
      });
      const dead = await record(broker, names.deadLetter);

      await broker.publish({ queue: names.requests }, { refund: 'poison' }, { messageId: 'poison-released' });

      const [letter] = await eventually(() => dead.length === 1 && dead, 'the poison message in the DLQ');
      expect(seen.map((d) => d.deliveryCount)).toEqual([undefined, 1, 1, 1, DELIVERY_LIMIT]);
      expect(seen.map((d) => d.redelivered)).toEqual([false, true, true, true, true]);
      expect(seen.every((d) => d.attempt === 0)).toBe(true);
      expect(letter?.messageId).toBe('poison-released');
      expect(letter && deadLetterReason(letter)).toBe('delivery_limit');
      expect(await broker.queueDepth(names.requests)).toBe(0);
    });

    it('never dead-letters a message for its releases, even one that failed before them', async () => {
      const { broker, names } = await startBroker();
      // One failed delivery, then more releases than the delivery limit allows returns, then handled.
      const releases = DELIVERY_LIMIT + 2;
      let handed = 0;
      const seen = await record(broker, names.requests, (): Outcome => {
        handed += 1;
        if (handed === 1) throw new Error('store hiccup');
        return handed <= releases + 1 ? { kind: 'release' } : { kind: 'ack' };
      });
      const dead = await record(broker, names.deadLetter);

      await broker.publish({ queue: names.requests }, { refund: 'later' }, { messageId: 'released-2' });

      await eventually(() => seen.length === releases + 2, 'the delivery after the releases');
      await eventually(async () => (await broker.queueDepth(names.requests)) === 0, 'an empty queue');
      expect(seen.map((d) => d.deliveryCount)).toEqual([
        undefined,
        ...Array.from({ length: releases + 1 }, () => 1),
      ]);
      expect(dead).toEqual([]);
    });

    it('never runs more handlers at once than the prefetch allows', async () => {
      const { broker, names } = await startBroker();
      const release = gate();
      let active = 0;
      let maxActive = 0;
      let done = 0;
      await broker.consume(
        names.requests,
        async () => {
          active += 1;
          maxActive = Math.max(maxActive, active);
          await release.promise;
          active -= 1;
          done += 1;
          return { kind: 'ack' };
        },
        { prefetch: 3, maxAttempts: 3 },
      );

      for (let i = 0; i < 8; i++)
        await broker.publish({ queue: names.requests }, { i }, { messageId: `p-${i}` });

      await eventually(() => active === 3, 'three handlers in flight');
      // The broker holds the rest back until one is acknowledged.
      await eventually(
        async () => (await broker.queueDepth(names.requests)) === 5,
        'five messages left ready',
      );
      expect(active).toBe(3);
      release.open();
      await eventually(() => done === 8, 'all messages handled');
      expect(maxActive).toBe(3);
    });

    it('close() waits for the handlers in flight, which still get to ack', async () => {
      const { broker, names } = await startBroker();
      const release = gate();
      const events: string[] = [];
      await broker.consume(
        names.requests,
        async () => {
          events.push('handler started');
          await release.promise;
          events.push('handler finished');
          return { kind: 'ack' };
        },
        { prefetch: 1, maxAttempts: 3 },
      );
      await broker.publish({ queue: names.requests }, { refund: 'slow' }, { messageId: 'slow-1' });
      await eventually(() => events.includes('handler started'), 'the handler to start');

      const closing = broker.close().then(() => events.push('closed'));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(events).not.toContain('closed');
      release.open();
      await closing;

      expect(events).toEqual(['handler started', 'handler finished', 'closed']);
      expect(await depthSeenByAFreshBroker(broker, names)).toBe(0);
    });

    it('cancel() stops deliveries to that consumer after its running handler finishes', async () => {
      const { broker, names } = await startBroker();
      const release = gate();
      const handled: string[] = [];
      const consumer = await broker.consume(
        names.requests,
        async (d) => {
          await release.promise;
          handled.push(d.messageId);
          return { kind: 'ack' };
        },
        { prefetch: 1, maxAttempts: 3 },
      );
      await broker.publish({ queue: names.requests }, {}, { messageId: 'c-1' });
      await eventually(async () => (await broker.queueDepth(names.requests)) === 0, 'c-1 to be taken');

      const cancelled = consumer.cancel().then(() => handled.push('cancelled'));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(handled).toEqual([]);
      release.open();
      await cancelled;
      expect(handled).toEqual(['c-1', 'cancelled']);

      await broker.publish({ queue: names.requests }, {}, { messageId: 'c-2' });
      expect(await broker.queueDepth(names.requests)).toBe(1);
      expect(handled).toEqual(['c-1', 'cancelled']);
    });

    it('routes topic events to the queues whose binding pattern matches', async () => {
      const { broker, names, prefix } = await startBroker();
      const intents = `${prefix}.sub.intents`;
      const charges = `${prefix}.sub.charges`;
      const everything = `${prefix}.sub.all`;
      await broker.bind(intents, names.events, 'payment_intent.*');
      await broker.bind(charges, names.events, 'charge.#');
      await broker.bind(everything, names.events, '#');
      const got = {
        intents: await record(broker, intents),
        charges: await record(broker, charges),
        everything: await record(broker, everything),
      };

      const keys = [
        'payment_intent.succeeded',
        'charge.refund.updated',
        'customer.created',
        'payment_intent.a.b',
      ];
      for (const key of keys) {
        await broker.publish(
          { exchange: names.events, routingKey: key },
          { type: key },
          { messageId: `evt-${key}` },
        );
      }

      await eventually(() => got.everything.length === keys.length, 'every event on the catch-all queue');
      await eventually(() => got.intents.length === 1 && got.charges.length === 1, 'the filtered queues');
      expect(got.intents.map((d) => d.body)).toEqual([{ type: 'payment_intent.succeeded' }]);
      expect(got.charges.map((d) => d.body)).toEqual([{ type: 'charge.refund.updated' }]);
      expect(got.everything.map((d) => d.messageId).sort()).toEqual(keys.map((k) => `evt-${k}`).sort());
    });

    it('gives every other consumed queue its own retry and dead-letter queues', async () => {
      const { broker, names, prefix } = await startBroker();
      const subscriber = `${prefix}.sub.refunds`;
      await broker.bind(subscriber, names.events, 'charge.refunded');
      const attempts = await record(broker, subscriber, (d) =>
        d.attempt === 0
          ? { kind: 'retry', reason: 'not yet' }
          : { kind: 'dead-letter', reason: 'unknown charge' },
      );

      await broker.publish(
        { exchange: names.events, routingKey: 'charge.refunded' },
        { id: 'evt_1' },
        { messageId: 'evt_1' },
      );

      await eventually(
        async () => (await broker.queueDepth(`${subscriber}.dlq`)) === 1,
        'the subscriber DLQ',
      );
      expect(attempts.map((d) => d.attempt)).toEqual([0, 1]);
      expect(await broker.queueDepth(names.deadLetter)).toBe(0);
    });
  });

  /** Acked means gone for good: a broker that connects afresh finds nothing left to deliver. */
  async function depthSeenByAFreshBroker(closed: Broker, names: TopologyNames): Promise<number | null> {
    if (driver.kind === 'memory') return closed.queueDepth(names.requests);
    const fresh = driver.make(names, `${names.requests}.fresh`);
    brokers.keep(fresh);
    await fresh.start();
    return fresh.queueDepth(names.requests);
  }
});
