/**
 * POST /refund and POST /refund-async share one guard: what is left to refund is read under the payment's row lock
 * and counts refunds still in flight, whichever path asked for them. Asked for at once, on both ledgers (on
 * PostgreSQL the queued path's single-statement accept races the synchronous path's transaction), the refunds
 * accepted never add up to more than the payment, Stripe holds exactly those, and of several "refund what is left"
 * requests of both kinds one is accepted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { postgresAvailable } from '../helpers/services.js';
import { eventually, startTestService, type Db, type TestService } from '../helpers/service.js';

const dbs: Db[] = ['sqlite', ...((await postgresAvailable()) ? (['postgres'] as const) : [])];

describe.each(dbs)('synchronous and queued refunds of one payment at once, on %s', (db) => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService(db, { RATE_LIMIT_PER_MINUTE: '0', LOG_LEVEL: 'warn' });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  const settled = (ids: string[]) =>
    eventually(
      () => Promise.all(ids.map((id) => getJson(`${svc.url}/refund-status/${id}`))),
      (all) => all.every((s) => s.json.status === 'succeeded'),
      20_000,
    );
  const atStripe = async (pi: string) =>
    (await svc.deps.stripe.refunds.list({ payment_intent: pi, limit: 100 })).data;

  it('never refund more than the payment between them', async () => {
    const pi = await paidIntent(svc.url, 10_000);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        postJson(`${svc.url}/${i % 2 ? 'refund' : 'refund-async'}`, { payment_intent_id: pi, amount: 700 }),
      ),
    );
    const accepted = answers.filter((r) => r.status === 200 || r.status === 202);
    const refused = answers.filter((r) => r.status === 409);
    expect(accepted.length + refused.length).toBe(20);
    expect(accepted).toHaveLength(14); // 14 × 700 = 9800 ≤ 10000 < 15 × 700
    for (const r of refused) expect(r.json.code).toBe('amount_exceeds_refundable');
    const done = await settled(accepted.map((r) => r.json.request_id as string));
    expect(done.map((s) => s.json.amount)).toEqual(Array(14).fill(700));
    const made = await atStripe(pi);
    expect(made.reduce((sum, r) => sum + r.amount, 0)).toBe(9800);
    expect(await svc.deps.store.refunds.sumCommitted(pi)).toBe(9800);
    // What is left is exactly what the guard lets through.
    expect((await postJson(`${svc.url}/refund-async`, { payment_intent_id: pi, amount: 201 })).status).toBe(
      409,
    );
    expect((await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 200 })).status).toBe(200);
  });

  it('accept one of several requests for what is left, sent to both paths', async () => {
    const pi = await paidIntent(svc.url, 6_000);
    const answers = await Promise.all([
      postJson(`${svc.url}/refund`, { payment_intent_id: pi }),
      postJson(`${svc.url}/refund-async`, { payment_intent_id: pi }),
      postJson(`${svc.url}/refund-async`, { payment_intent_id: pi }),
      postJson(`${svc.url}/refund`, { payment_intent_id: pi }),
    ]);
    const accepted = answers.filter((r) => r.status === 200 || r.status === 202);
    expect(accepted).toHaveLength(1);
    for (const r of answers.filter((a) => !accepted.includes(a))) {
      expect(r.status).toBe(409);
      expect(r.json.code).toBe('charge_already_refunded');
    }
    await settled([accepted[0]!.json.request_id as string]);
    expect((await atStripe(pi)).map((r) => r.amount)).toEqual([6_000]);
  });
});
