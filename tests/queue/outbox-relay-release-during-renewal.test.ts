/**
 * A row the relay gives back (a handed-over row it will not publish: the broker went away) while it is renewing the
 * same row's lease. The renewal's statement has moved the row to a new lease, but the relay has not heard back yet:
 * the release went by the lease held before the renewal, found the row under another one, and left it leased. The
 * row then waited for the renewed lease to end before any relay could take it.
 */
import { expect, it, vi } from 'vitest';
import { createOutboxRelay } from '../../src/queue/outbox-relay.js';
import { describeStore, gated, silentLogger, uid, until } from '../store/harness.js';
import { slowBroker } from '../store/relay-support.js';

const QUEUE = 'stripe_refund_requests';

describeStore('outbox relay: a row given back during a lease renewal', (h) => {
  it('is free for the next claim at once, not once the renewed lease ends', async () => {
    const store = await h.open(h.newDatabase());
    // The broker holds the first publish until told, then refuses it: meanwhile the relay's loop is busy.
    const { broker, open: refuse, sent } = await slowBroker({ refuse: 'broker went away' });
    // A renewal's statement runs, but its answer reaches the relay only when told. A release (leases ended now)
    // goes through.
    const answer = gated();
    const renewed: number[] = [];
    let releases = 0;
    const extendLeases = store.outbox.extendLeases.bind(store.outbox);
    vi.spyOn(store.outbox, 'extendLeases').mockImplementation(async (held, untilTime) => {
      const renewal = new Date(untilTime).getTime() > Date.now() + 1_000;
      const ids = await extendLeases(held, untilTime);
      if (!renewal) {
        releases++;
        return ids;
      }
      renewed.push(...ids);
      await answer.gate;
      return ids;
    });

    const leaseMs = 6_000;
    const relay = createOutboxRelay({
      store,
      broker,
      logger: silentLogger,
      leaseMs,
      backoffMs: 60_000,
      idleMs: 20,
    });
    await store.outbox.add({ destination: QUEUE, messageId: uid('busy'), payload: { n: 1 } });
    relay.start();
    let released: number | undefined;
    try {
      expect(await until(() => sent.publishes === 1)).toBe(true);
      // A refund accepted meanwhile hands its row over, written under this relay's lease.
      const lease = relay.leaseForHandOff();
      expect(lease).not.toBeNull();
      const row = await store.outbox.add({
        destination: QUEUE,
        messageId: uid('handed'),
        payload: { n: 2 },
        availableAt: new Date(Date.now() + lease!),
      });
      relay.handOff(row);
      released = row.id;
      // Two thirds into the lease the relay renews it: the row is under the new lease, the relay not told yet.
      expect(await until(() => renewed.includes(row.id), 15_000)).toBe(true);
      // The broker goes away: the relay gives the handed-over row back instead of publishing it.
      vi.spyOn(broker, 'isConnected').mockReturnValue(false);
      refuse();
      expect(await until(() => releases >= 1)).toBe(true);
      // What another relay's claim finds now (well before the renewed lease would end): the row given back.
      const claimed = await store.outbox.claimBatch(10, new Date(Date.now() + 1_000), 1);
      expect(claimed.map((m) => m.id)).toEqual([released]);
      answer.open();
    } finally {
      refuse();
      answer.open();
      await relay.stop();
    }
    await broker.close();
  }, 30_000);
});
