/**
 * A refund's outcome messages on `stripe_refund_responses` carry the `x-request-id` of the HTTP request that asked
 * for it, so a consumer can put them beside that request's lines. The ones the request or the worker wrote did; the
 * final status a webhook settles later (a refund Stripe answers `pending` and makes succeeded afterwards) came
 * without it. Now every outcome of the refund carries it.
 */
import { connect } from 'amqplib';
import { describe, expect, it } from 'vitest';
import {
  RABBIT_URL,
  databases,
  paidThroughService,
  rabbitReady,
  sandboxEvents,
  until,
  useRig,
  type Rig,
} from './support/rig.js';

const rabbit = await rabbitReady('request id on outcomes a webhook settles');
const dbs = await databases();

interface Outcome {
  status: string;
  requestIdHeader: unknown;
}

/** Takes every message in `queue` now, with its x-request-id header. */
async function drainWithHeaders(queue: string, requestId: string): Promise<Outcome[]> {
  const conn = await connect(RABBIT_URL);
  try {
    const ch = await conn.createChannel();
    const out: Outcome[] = [];
    for (;;) {
      const msg = await ch.get(queue, { noAck: false });
      if (msg === false) break;
      ch.ack(msg);
      const body = JSON.parse(msg.content.toString('utf8')) as { request_id: string; status: string };
      const headers = (msg.properties.headers ?? {}) as Record<string, unknown>;
      if (body.request_id === requestId)
        out.push({ status: body.status, requestIdHeader: headers['x-request-id'] });
    }
    await ch.close();
    return out;
  } finally {
    await conn.close();
  }
}

async function post(rig: Rig, path: string, body: unknown, reqId: string) {
  const res = await fetch(`${rig.svc.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': reqId },
    body: JSON.stringify(body),
  });
  return { status: res.status, reqId: res.headers.get('x-request-id'), json: (await res.json()) as unknown };
}

/** Settles the refund at Stripe and delivers its refund.updated (succeeded), as Stripe would. */
async function settleByWebhook(rig: Rig, refundId: string): Promise<void> {
  await rig.settleRefund(refundId);
  const updated = (await sandboxEvents(rig, new Set(['refund.updated']))).filter(
    (e) => (e.data.object as { id: string }).id === refundId,
  );
  expect(updated).toHaveLength(1);
  expect((await rig.send(JSON.stringify(updated[0]))).status).toBe(200);
  await rig.settled();
}

describe.skipIf(!rabbit).each(dbs)('x-request-id on outcomes a webhook settles, on %s', (db) => {
  const rig = useRig(db, `settled-reqid.${db}`);

  it('POST /refund answered pending, made succeeded by refund.updated: both outcomes name the request', async () => {
    const pi = await paidThroughService(rig, 'pm_card_pendingRefund', 1500);
    await rig.drain(rig.topology.responses);
    const made = await post(
      rig,
      '/refund',
      { payment_intent_id: pi, request_id: 'order-sync-1' },
      'trace-sync-1',
    );
    expect(made.status).toBe(200);
    expect(made.reqId).toBe('trace-sync-1');
    const refundId = (made.json as { refund: { id: string; status: string } }).refund.id;
    expect((made.json as { refund: { status: string } }).refund.status).toBe('pending');
    await rig.settled();

    await settleByWebhook(rig, refundId);

    expect(await drainWithHeaders(rig.topology.responses, 'order-sync-1')).toEqual([
      { status: 'pending', requestIdHeader: 'trace-sync-1' },
      { status: 'succeeded', requestIdHeader: 'trace-sync-1' },
    ]);
  });

  it('POST /refund-async made pending by the worker, succeeded by refund.updated: both outcomes name the request', async () => {
    const pi = await paidThroughService(rig, 'pm_card_pendingRefund', 1500);
    await rig.drain(rig.topology.responses);
    const accepted = await post(
      rig,
      '/refund-async',
      { payment_intent_id: pi, request_id: 'order-async-1' },
      'trace-async-1',
    );
    expect(accepted.status).toBe(202);
    const row = await until(async () => {
      const r = await rig.svc.deps.store.refunds.get('order-async-1');
      return r?.stripeRefundId ? r : null;
    }, 'the worker to make the refund');
    await rig.settled();

    await settleByWebhook(rig, row.stripeRefundId!);

    expect(await drainWithHeaders(rig.topology.responses, 'order-async-1')).toEqual([
      { status: 'pending', requestIdHeader: 'trace-async-1' },
      { status: 'succeeded', requestIdHeader: 'trace-async-1' },
    ]);
  });
});
