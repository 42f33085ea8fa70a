/**
 * Done-when 4: ten poison messages published straight to the requests queue among 990 real refunds:
 * bodies that are not JSON, messages without a request key, keys the ledger does not know, and two that
 * make the handler throw on every delivery (a key PostgreSQL refuses, a ledger row that cannot be
 * read). Each lands in the dead-letter queue after a bounded number of deliveries; the rest succeed.
 */
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DELIVERY_LIMIT } from '../../src/queue/index.js';
import { POSTGRES_URL, postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import {
  countsOf,
  expectExactlyOnce,
  paidIntents,
  pool,
  postRefundAsync,
  refundOrders,
  retryQueues,
  useCluster,
  waitFor,
} from './support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());

describe.skipIf(!ready)('poison messages on the refund requests queue', () => {
  const rig = useCluster('poison', { ROLE: 'all' });

  /** A ledger row whose metadata is not JSON, as a bad manual fix or a botched migration could leave. */
  async function corruptLedgerRow(key: string, pi: string): Promise<void> {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await client.query(
        `INSERT INTO "${rig.db.schema}".refunds
           (request_id, owner, payment_intent_id, amount, currency, status, mode, metadata, created_at, updated_at)
         VALUES ($1, '', $2, 100, 'sgd', 'queued', 'async', '{not json', now(), now())`,
        [key, pi],
      );
    } finally {
      await client.end();
    }
  }

  it('dead-letters the ten poison messages after bounded deliveries and refunds the other 990', async () => {
    const intents = await paidIntents(rig.svc.url, 100, 10_000);
    const orders = refundOrders(rig.tag, intents.slice(0, 99), 10, 1_000);
    const keys = orders.map((o) => o.request_id);
    await corruptLedgerRow(`${rig.tag}-unreadable`, intents[99]!);

    const nulKey = `${rig.tag}-nul\u0000byte`;
    const poison: { id: string; content: Buffer; reason: string }[] = [
      { id: 'p-json-1', content: Buffer.from('{not json'), reason: 'body is not valid JSON' },
      { id: 'p-json-2', content: Buffer.from([0xff, 0xfe, 0x00]), reason: 'body is not valid JSON' },
      { id: 'p-json-3', content: Buffer.alloc(0), reason: 'body is not valid JSON' },
      {
        id: 'p-nokey-1',
        content: Buffer.from('{"hello":"world"}'),
        reason: 'malformed message: no request_key',
      },
      { id: 'p-nokey-2', content: Buffer.from('[1,2,3]'), reason: 'malformed message: no request_key' },
      {
        id: 'p-nokey-3',
        content: Buffer.from('{"request_key":42}'),
        reason: 'malformed message: no request_key',
      },
      {
        id: 'p-ghost-1',
        content: json({ request_key: `${rig.tag}-ghost-1` }),
        reason: 'unknown refund request',
      },
      {
        id: 'p-ghost-2',
        content: json({ request_key: `${rig.tag}-ghost-2` }),
        reason: 'unknown refund request',
      },
      { id: 'p-throw-nul', content: json({ request_key: nulKey }), reason: 'delivery_limit' },
      {
        id: 'p-throw-row',
        content: json({ request_key: `${rig.tag}-unreadable` }),
        reason: 'delivery_limit',
      },
    ];

    // The poison goes in while the real refunds stream past it.
    const third = Math.floor(orders.length / 3);
    await pool(orders.slice(0, third), 16, (o) => postRefundAsync(rig.svc.url, o));
    for (const p of poison) await rig.peek.publishRaw(rig.topology.requests, p.content, p.id);
    // Not poison but repeats, as a relay republishing after a crash would send: harmless, never refunded twice.
    for (const o of orders.slice(0, 5))
      await rig.peek.publishRaw(
        rig.topology.requests,
        json({ request_key: o.request_id }),
        `${o.request_id}#again`,
      );
    await pool(orders.slice(third), 16, (o) => postRefundAsync(rig.svc.url, o));

    const counts = await waitFor(
      () => countsOf(rig.svc, keys),
      (c) => c.succeeded === orders.length,
      60_000,
      250,
    );
    expect(counts).toMatchObject({ succeeded: orders.length, queued: 0, processing: 0, failed: 0 });
    await expectExactlyOnce(rig.stripe, keys, 1_000);

    await waitFor(
      () => rig.peek.depth(rig.topology.deadLetter),
      (n) => n >= poison.length,
      30_000,
      250,
    );
    const dead = await rig.peek.drain(rig.topology.deadLetter);
    const reasonOf = (h: Record<string, unknown>) =>
      (h['x-dead-letter-reason'] as string | undefined) ??
      ((h['x-death'] as { reason?: string }[] | undefined)?.[0]?.reason as string);
    expect(
      dead
        .map((m) => [m.messageId, reasonOf(m.headers)])
        .sort(([a], [b]) => String(a).localeCompare(String(b))),
    ).toEqual(poison.map((p) => [p.id, p.reason]).sort(([a], [b]) => a!.localeCompare(b!)));

    // A throwing handler is given exactly the delivery limit's redeliveries, then it is over.
    const failures = rig.svc.lines
      .map((l) => JSON.parse(l) as { msg?: string; request_id?: string })
      .filter((l) => l.msg === 'refund worker failed on a message' && l.request_id === nulKey);
    expect(failures).toHaveLength(DEFAULT_DELIVERY_LIMIT + 1);

    // Nothing is left circulating.
    for (const q of [rig.topology.requests, ...retryQueues(rig.topology)])
      expect(await rig.peek.depth(q), q).toBe(0);
    expect((await rig.svc.deps.store.refunds.get(`${rig.tag}-ghost-1`)) ?? null).toBeNull();
  }, 120_000);
});

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}
