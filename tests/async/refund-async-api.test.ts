/**
 * POST /refund-async and GET /refund-status end to end on RabbitMQ, on SQLite and on PostgreSQL:
 * the answers, the same guards as /refund, request_id idempotency (done-when 5: ten concurrent
 * copies make one refund), the outcome message on the responses queue, and a permanent Stripe
 * refusal ending `failed` with its reason, dead-lettered.
 */
import { describe, expect, it } from 'vitest';
import { validate, validateResponse } from '../helpers/contract.js';
import { getJson, postJson } from '../helpers/http.js';
import { postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import { paidIntents, useCluster, waitFor } from './support/harness.js';

const rabbit = await rabbitAvailable();
const dbs = ['sqlite', ...(rabbit && (await postgresAvailable()) ? ['postgres'] : [])];

interface Outcome {
  success: boolean;
  request_id: string;
  refund_id: string | null;
  status: string;
  amount: number;
  failure_reason: string | null;
}

describe.skipIf(!rabbit).each(dbs)('async refunds over RabbitMQ on %s', (dbKind) => {
  const rig = useCluster(`api_${dbKind}`, { ROLE: 'all' }, { sqlite: dbKind === 'sqlite' });
  const { tag, topology } = rig;
  const outcomes: Outcome[] = [];

  const status = (id: string, query = '') => getJson(`${rig.svc.url}/refund-status/${id}${query}`);
  const settled = (id: string) =>
    waitFor(
      () => status(id),
      (r) => r.status === 200 && !['queued', 'processing'].includes(r.json.status as string),
      20_000,
    );
  /** Outcome messages read so far plus whatever arrived since. */
  async function outcomesFor(requestId: string): Promise<Outcome[]> {
    const found = () => outcomes.filter((o) => o.request_id === requestId);
    await waitFor(
      async () => {
        for (const m of await rig.peek.drain(topology.responses))
          outcomes.push(JSON.parse(m.body) as Outcome);
        return found().length;
      },
      (n) => n > 0,
      10_000,
    );
    return found();
  }

  it('answers 202 with success, message and request_id, then the worker refunds it', async () => {
    const [pi] = await paidIntents(rig.svc.url, 1, 10_000);
    const res = await postJson(`${rig.svc.url}/refund-async`, {
      payment_intent_id: pi,
      amount: 5_000,
      request_id: `${tag}-first`,
    });
    expect(res.status).toBe(202);
    expect(res.json).toMatchObject({
      success: true,
      message: 'Refund request queued successfully',
      request_id: `${tag}-first`,
    });
    expect(validateResponse('createRefundAsync', 202, res.json)).toEqual([]);

    const done = await settled(`${tag}-first`);
    expect(done.json).toMatchObject({ status: 'succeeded', amount: 5_000, payment_intent_id: pi });
    expect(done.json.refund_id).toMatch(/^re_/);
    expect(validateResponse('getRefundStatus', 200, done.json)).toEqual([]);
    // The payment intent query parameter is accepted but not needed.
    const withQuery = await status(`${tag}-first`, `?payment_intent_id=${pi}`);
    expect(withQuery.status).toBe(200);
    expect(withQuery.json.refund_id).toBe(done.json.refund_id);

    const refunds = await rig.stripe.stripe.refunds.list({ payment_intent: pi });
    expect(refunds.data.map((r) => [r.id, r.amount, r.metadata?.request_id])).toEqual([
      [done.json.refund_id, 5_000, `${tag}-first`],
    ]);

    const [outcome] = await outcomesFor(`${tag}-first`);
    expect(outcome).toMatchObject({
      success: true,
      request_id: `${tag}-first`,
      refund_id: done.json.refund_id,
      status: 'succeeded',
      amount: 5_000,
      failure_reason: null,
    });
    expect(validate('#/components/schemas/RefundOutcomeMessage', outcome)).toEqual([]);
  });

  it('generates a request_id when none is given', async () => {
    const [pi] = await paidIntents(rig.svc.url, 1, 3_000);
    const res = await postJson(`${rig.svc.url}/refund-async`, { payment_intent_id: pi });
    expect(res.status).toBe(202);
    const id = res.json.request_id as string;
    expect(id).toMatch(/^[A-Za-z0-9._:-]{8,}$/);
    expect((await settled(id)).json).toMatchObject({ status: 'succeeded', amount: 3_000 });
  });

  it('answers a repeat with the same body the same way and refunds nothing more', async () => {
    const [pi] = await paidIntents(rig.svc.url, 1, 10_000);
    const body = { payment_intent_id: pi, amount: 2_500, request_id: `${tag}-repeat` };
    const first = await postJson(`${rig.svc.url}/refund-async`, body);
    await settled(`${tag}-repeat`);
    const again = await postJson(`${rig.svc.url}/refund-async`, body);
    expect(again.status).toBe(202);
    expect(again.json).toEqual(first.json);
    await new Promise((r) => setTimeout(r, 300));
    const refunds = await rig.stripe.stripe.refunds.list({ payment_intent: pi });
    expect(refunds.data).toHaveLength(1);
    expect((await rig.svc.deps.store.refunds.listForPaymentIntent(pi!)).length).toBe(1);
  });

  it('refuses the same request_id with a different body (409 problem+json)', async () => {
    const [pi] = await paidIntents(rig.svc.url, 1, 10_000);
    const id = `${tag}-conflict`;
    expect(
      (
        await postJson(`${rig.svc.url}/refund-async`, {
          payment_intent_id: pi,
          amount: 1_000,
          request_id: id,
        })
      ).status,
    ).toBe(202);
    const res = await postJson(`${rig.svc.url}/refund-async`, {
      payment_intent_id: pi,
      amount: 2_000,
      request_id: id,
    });
    expect(res.status).toBe(409);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.json).toMatchObject({ status: 409, code: 'request_id_conflict' });
    expect(validateResponse('createRefundAsync', 409, res.json)).toEqual([]);
    expect((await settled(id)).json).toMatchObject({ status: 'succeeded', amount: 1_000 });
  });

  it('ten concurrent copies of one request make one refund and get equal answers', async () => {
    const [pi] = await paidIntents(rig.svc.url, 1, 10_000);
    const body = { payment_intent_id: pi, amount: 4_000, request_id: `${tag}-tenfold` };
    const answers = await Promise.all(
      Array.from({ length: 10 }, () => postJson(`${rig.svc.url}/refund-async`, body)),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(202));
    for (const a of answers) expect(a.json).toEqual(answers[0]!.json);
    expect(answers[0]!.json).toMatchObject({ success: true, request_id: `${tag}-tenfold`, status: 'queued' });

    expect((await settled(`${tag}-tenfold`)).json.status).toBe('succeeded');
    await new Promise((r) => setTimeout(r, 300));
    expect(await rig.svc.deps.store.refunds.listForPaymentIntent(pi!)).toHaveLength(1);
    const refunds = await rig.stripe.stripe.refunds.list({ payment_intent: pi });
    expect(refunds.data.map((r) => r.amount)).toEqual([4_000]);
  });

  it('one request_id sent for two intents at once: one 202, the other 409, one refund', async () => {
    const [a, b] = await paidIntents(rig.svc.url, 2, 10_000);
    const id = `${tag}-two-intents`;
    const answers = await Promise.all(
      [a, b].map((pi) => postJson(`${rig.svc.url}/refund-async`, { payment_intent_id: pi, request_id: id })),
    );
    expect(answers.map((r) => r.status).sort()).toEqual([202, 409]);
    const won = answers.findIndex((r) => r.status === 202);
    expect(answers[1 - won]!.json).toMatchObject({ status: 409, code: 'request_id_conflict' });
    expect((await settled(id)).json).toMatchObject({ status: 'succeeded', amount: 10_000 });
    const winner = won === 0 ? a! : b!;
    const loser = won === 0 ? b! : a!;
    expect(
      (await rig.stripe.stripe.refunds.list({ payment_intent: winner })).data.map((r) => r.amount),
    ).toEqual([10_000]);
    expect((await rig.stripe.stripe.refunds.list({ payment_intent: loser })).data).toEqual([]);
    expect(await rig.svc.deps.store.refunds.listForPaymentIntent(loser)).toEqual([]);
  });

  it('applies the /refund guards: unknown intent, bad body, more than is left (in-flight refunds count)', async () => {
    const missing = await postJson(`${rig.svc.url}/refund-async`, {
      payment_intent_id: 'pi_doesnotexist000000000000',
    });
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);

    const [pi] = await paidIntents(rig.svc.url, 1, 10_000);
    for (const bad of [
      { payment_intent_id: pi, amount: 0 },
      { amount: 100 },
      { payment_intent_id: pi, amount: 'ten' },
    ]) {
      const res = await postJson(`${rig.svc.url}/refund-async`, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
    }
    // Two queued refunds of 6,000 on 10,000: the second is refused even before the first reaches Stripe.
    const [a, b] = await Promise.all([
      postJson(`${rig.svc.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 6_000,
        request_id: `${tag}-g1`,
      }),
      postJson(`${rig.svc.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 6_000,
        request_id: `${tag}-g2`,
      }),
    ]);
    expect([a.status, b.status].sort()).toEqual([202, 409]);
    expect((a.status === 409 ? a : b).json.code).toBe('amount_exceeds_refundable');
    const refused = a.status === 409 ? `${tag}-g1` : `${tag}-g2`;
    expect((await status(refused)).status).toBe(404);
  });

  it('answers 404 problem+json for an unknown request id', async () => {
    const res = await status(`${tag}-never-sent`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(validateResponse('getRefundStatus', 404, res.json)).toEqual([]);
  });

  it('a refund Stripe refuses ends failed with the reason, dead-lettered, and its outcome says so', async () => {
    const [pi] = await paidIntents(rig.svc.url, 1, 10_000);
    // Refunded at Stripe behind the service's back (no webhook reaches this service), so the ledger
    // still believes the money is there and Stripe has the final word.
    await rig.stripe.stripe.refunds.create({ payment_intent: pi! });
    const id = `${tag}-refused`;
    expect(
      (await postJson(`${rig.svc.url}/refund-async`, { payment_intent_id: pi, request_id: id })).status,
    ).toBe(202);

    const done = await settled(id);
    expect(done.json).toMatchObject({
      status: 'failed',
      failure_reason: 'charge_already_refunded',
      refund_id: null,
    });

    const dead = await waitFor(
      () => rig.peek.drain(topology.deadLetter),
      (list) => list.length > 0,
      10_000,
    );
    expect(dead.map((m) => JSON.parse(m.body) as unknown)).toEqual([{ request_key: id }]);
    expect(dead[0]!.headers['x-dead-letter-reason']).toBe('charge_already_refunded');

    const [outcome] = await outcomesFor(id);
    expect(outcome).toMatchObject({
      success: false,
      request_id: id,
      refund_id: null,
      status: 'failed',
      failure_reason: 'charge_already_refunded',
    });
  });
});
