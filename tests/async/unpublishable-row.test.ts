/**
 * An outbox row RabbitMQ's client refuses as it is (a message id over 255 bytes: amqplib throws from publish
 * before sending anything). It is not a channel problem: the publish says why, the driver does not declare the
 * events exchange and its bindings again for it, and the relay sets the row aside instead of retrying it on the
 * backoff schedule forever, while the rows around it go out.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { RABBITMQ_URL } from '../helpers/services.js';
import { startTestService } from '../helpers/service.js';
import {
  deleteEverything,
  eventually,
  openAdmin,
  probeRabbit,
  relayRig,
  topologyFor,
  uniquePrefix,
} from '../queue/support/rabbit.js';

const filePrefix = uniquePrefix('rq-invalid');
const rabbit = await probeRabbit('unpublishable outbox row');

afterAll(async () => {
  if (rabbit.ok) await deleteEverything(filePrefix);
});

const LONG_ID = `evt_${'x'.repeat(300)}`;

describe.skipIf(!rabbit.ok)('an outbox row whose message id is over 255 bytes', () => {
  it('the publish says what is wrong with the message, not that the channel is closed', async () => {
    const prefix = `${filePrefix}.1`;
    const { names, broker, close } = await relayRig(prefix, { maxBackoffMs: 200 });
    try {
      await broker.start();
      const err = await broker
        .publish({ exchange: names.events, routingKey: 'charge.refunded' }, { n: 1 }, { messageId: LONG_ID })
        .then(
          () => null,
          (e: unknown) => e as { code?: string; message?: string },
        );
      expect(err).toMatchObject({ code: 'invalid', message: expect.stringMatching(/messageId.*255/) });
      // The channel was fine all along: the next message goes out.
      await broker.publish({ queue: names.responses }, { n: 2 }, { messageId: 'ok-1' });
      expect(await broker.queueDepth(names.responses)).toBe(1);
    } finally {
      await close();
    }
  }, 30_000);

  it('is set aside with the reason, the events topology is not declared again, and the other rows go out', async () => {
    const prefix = `${filePrefix}.2`;
    const maxBackoffMs = 200;
    const { names, store, broker, relay, close } = await relayRig(prefix, { maxBackoffMs });
    const admin = await openAdmin();
    try {
      await broker.start();
      const subscriber = `${prefix}.sub`;
      await broker.bind(subscriber, names.events, '#');
      // An operator removes the subscription: nothing the relay does for a bad row should bind it again.
      await (await admin.channel()).unbindQueue(subscriber, names.events, '#');

      await store.outbox.add({
        destination: `exchange:${names.events}`,
        routingKey: 'charge.refunded',
        messageId: LONG_ID,
        payload: { secret: 'body-4711' },
      });
      await store.outbox.add({ destination: names.responses, messageId: 'outcome-1', payload: { n: 1 } });
      relay.start();
      await eventually(async () => (await store.outbox.pendingCount()) === 1, 'the good row sent');
      await relay.stop();

      // Not on the backoff schedule (at most maxBackoffMs away): well beyond it, nothing is due.
      const dueSoon = await store.outbox.claimBatch(10, new Date(Date.now() + 20 * maxBackoffMs), 1);
      expect(dueSoon.map((m) => m.messageId.slice(0, 10))).toEqual([]);
      // Still unsent, with the real reason.
      const [parked] = await store.outbox.claimBatch(10, new Date(Date.now() + 2 * 86_400_000), 1);
      expect(parked?.messageId).toBe(LONG_ID);
      expect(parked?.attempts).toBe(1);
      expect(parked?.lastError).toMatch(/messageId.*255/);
      expect(parked?.lastError).not.toMatch(/channel/);

      // The binding the operator removed stayed removed: a message to the exchange reaches no queue of it.
      const ch = await admin.conn.createConfirmChannel();
      ch.publish(names.events, 'charge.refunded', Buffer.from('{}'));
      await ch.waitForConfirms();
      await ch.close();
      expect((await (await admin.channel()).checkQueue(subscriber)).messageCount).toBe(0);
    } finally {
      await close();
      await admin.conn.close();
    }
  }, 30_000);

  // Set aside, the row no longer moves on its own: the backlog gauges show that something waits, not that it
  // never will. An operator alerts on this counter and finds the row by the ids of the log line.
  it('counts the row once in payments_outbox_unpublishable_total and logs its ids and the reason, not its body', async () => {
    const prefix = `${filePrefix}.3`;
    const names = topologyFor(prefix);
    const svc = await startTestService('sqlite', { RABBITMQ_URL }, { topology: names });
    const scrape = async () => (await fetch(`${svc.url}/metrics`)).text();
    const counted = (text: string) => /^payments_outbox_unpublishable_total (\d+)$/m.exec(text)?.[1];
    try {
      await eventually(() => svc.deps.broker.isConnected(), 'the broker connected');
      // Declared from the start, at zero: an alert on its increase sees the first one.
      expect(counted(await scrape())).toBe('0');

      const row = await svc.deps.store.outbox.add({
        destination: `exchange:${names.events}`,
        routingKey: 'charge.refunded',
        messageId: LONG_ID,
        payload: { secret: 'body-4711' },
      });
      svc.deps.relay.notify();
      await eventually(async () => counted(await scrape()) === '1', 'the set-aside row counted');

      const lines = svc.lines.filter((l) => l.includes('can never be published'));
      expect(lines).toHaveLength(1);
      const line = JSON.parse(lines[0]!) as Record<string, unknown>;
      expect(line).toMatchObject({
        outboxId: row.id,
        messageId: LONG_ID,
        destination: `exchange:${names.events}`,
        reason: expect.stringMatching(/messageId.*255/),
      });
      expect(lines[0]).not.toContain('body-4711');

      // Its next try (hourly; brought forward here) is refused again: the same row, so neither counted again nor
      // logged as an error again, or the counter would climb by one an hour for one row and read as many.
      await svc.deps.store.outbox.release([row.id]);
      svc.deps.relay.notify();
      const tries = () =>
        svc.lines.filter((l) => l.includes(`"outboxId":${row.id}`) && l.includes('published as it is'));
      await eventually(() => tries().length === 2, 'the row tried again');
      expect(counted(await scrape())).toBe('1');
      expect(tries().map((l) => (JSON.parse(l) as { level: number }).level)).toEqual([50, 40]);
      expect(tries()[1]).toMatch(/messageId.*255/);
    } finally {
      await svc.stop();
    }
  }, 30_000);
});
