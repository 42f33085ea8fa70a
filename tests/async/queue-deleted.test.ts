/**
 * The refund request queue deleted under a running service (an operator "purging" it, a
 * deployment tool). The broker cancels the worker's consumer; the driver re-subscribes, but only ever
 * checks that the queue exists. Nothing re-declares it while the connection stays up, so the consumer
 * retries forever, every publish of the relay comes back unroutable, and every refund accepted from
 * then on waits in the outbox (status `queued`) until some process happens to reconnect.
 */
import { describe, expect, it } from 'vitest';
import { postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import { countsOf, paidIntents, postRefundAsync, useCluster, waitFor } from '../async/support/harness.js';
import { openAdmin } from '../queue/support/rabbit.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());

describe.skipIf(!ready)('the refund request queue deleted under a running service', () => {
  const rig = useCluster('rq_qdel', { ROLE: 'all' });

  it('comes back: refunds accepted afterwards are still made', async () => {
    const [pi1, pi2] = await paidIntents(rig.svc.url, 2, 5_000);
    const first = { request_id: `${rig.tag}-before`, payment_intent_id: pi1!, amount: 1_000 };
    await postRefundAsync(rig.svc.url, first);
    const before = await waitFor(
      () => countsOf(rig.svc, [first.request_id]),
      (c) => c.succeeded === 1,
      15_000,
    );
    expect(before.succeeded).toBe(1);

    const admin = await openAdmin();
    try {
      const ch = await admin.channel();
      await ch.deleteQueue(rig.topology.requests);
    } finally {
      await admin.conn.close();
    }
    await waitFor(
      async () => rig.svc.lines.some((l) => l.includes('cancelled the consumer')),
      (seen) => seen,
      15_000,
    );

    const second = { request_id: `${rig.tag}-after`, payment_intent_id: pi2!, amount: 1_000 };
    await postRefundAsync(rig.svc.url, second);
    const after = await waitFor(
      () => countsOf(rig.svc, [second.request_id]),
      (c) => c.succeeded === 1,
      20_000,
    );
    expect(after).toMatchObject({ succeeded: 1, queued: 0 });
  }, 60_000);
});
