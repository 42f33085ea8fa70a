/**
 * Two API processes (each also a worker, ROLE=all) on ONE PostgreSQL schema, one RabbitMQ prefix and one
 * Stripe sandbox, hit at once with the same request through both: money never moves twice and no accepted
 * request is lost, whichever process took it. The sandbox delivers its webhooks to the second process only,
 * so a refund made by the first races the webhook for it at the other.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RABBITMQ_URL, postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import { postJson } from '../helpers/http.js';
import { startInProcess, useCluster, waitFor, type InProcessService } from '../async/support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());
const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString('hex')}`;
/** Requests sent at once for each race, alternating between the two processes. */
const N = 24;

type Answer = Awaited<ReturnType<typeof postJson>>;

describe.skipIf(!ready)('two API processes on one PostgreSQL schema', () => {
  const rig = useCluster('two', { ROLE: 'all', STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET });
  let b: InProcessService;
  const urls = () => [rig.svc.url, b.url];

  beforeAll(async () => {
    b = await startInProcess({ env: rig.env, db: rig.db, topology: rig.topology });
    rig.stripe.sandbox.addWebhookEndpoint({ url: `${b.url}/webhook`, secret: WEBHOOK_SECRET });
  });
  afterAll(async () => {
    await b?.close();
  });

  /** `n` copies of one request, alternating between the two processes, all in flight at once. */
  function race(path: string, body: unknown, headers: Record<string, string> = {}, n = N) {
    return Promise.all(
      Array.from({ length: n }, (_, i) => postJson(`${urls()[i % 2]}${path}`, body, headers)),
    );
  }

  async function paid(amount: number): Promise<string> {
    const res = await postJson(`${rig.svc.url}/payment-intent`, {
      amount,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    expect(res.status, res.text).toBe(200);
    return res.json.paymentIntentId as string;
  }

  const stripeRefunds = (pi: string) =>
    rig.stripe.stripe.refunds.list({ payment_intent: pi, limit: 100 }).autoPagingToArray({ limit: 1000 });

  async function ledger(pi: string) {
    const client = new (await import('pg')).default.Client({ connectionString: rig.db.url });
    await client.connect();
    try {
      const { rows } = await client.query<{
        request_id: string;
        amount: string;
        status: string;
        stripe_refund_id: string | null;
        mode: string;
      }>(
        'select request_id, amount, status, stripe_refund_id, mode from refunds where payment_intent_id = $1',
        [pi],
      );
      return rows.map((r) => ({ ...r, amount: Number(r.amount) }));
    } finally {
      await client.end();
    }
  }

  /** Polls `pi`'s one refund every 5 ms until it reads succeeded; answers it and every status seen on the way. */
  async function watchUntilSucceeded(pi: string) {
    const statuses = new Set<string>();
    const row = await waitFor(
      async () => {
        const r = (await ledger(pi))[0];
        if (r) statuses.add(r.status);
        return r;
      },
      (r) => r?.status === 'succeeded',
      15_000,
      5,
    );
    return { row, statuses };
  }

  /** Waits until no refund of `pi` is in flight, then checks ledger and Stripe agree one to one. */
  async function settledAndAgreeing(pi: string, paidAmount: number) {
    const rows = await waitFor(
      () => ledger(pi),
      (rs) => rs.every((r) => ['succeeded', 'failed', 'canceled'].includes(r.status)),
      20_000,
    );
    expect(rows.filter((r) => !['succeeded', 'failed', 'canceled'].includes(r.status))).toEqual([]);
    const atStripe = await stripeRefunds(pi);
    const live = atStripe.filter((r) => r.status !== 'failed' && r.status !== 'canceled');
    expect(live.reduce((s, r) => s + r.amount, 0)).toBeLessThanOrEqual(paidAmount);
    // Every Stripe refund is one ledger row's, and no ledger row has two.
    const byRow = new Map<string, number>();
    for (const r of atStripe)
      byRow.set(r.metadata!.request_id!, (byRow.get(r.metadata!.request_id!) ?? 0) + 1);
    expect([...byRow.values()].filter((n) => n > 1)).toEqual([]);
    expect(rows.filter((r) => r.mode === 'external')).toEqual([]);
    const succeeded = rows.filter((r) => r.status === 'succeeded');
    expect(succeeded.reduce((s, r) => s + r.amount, 0)).toBe(live.reduce((s, r) => s + r.amount, 0));
    expect(new Set(succeeded.map((r) => r.stripe_refund_id))).toEqual(new Set(live.map((r) => r.id)));
    return { rows, atStripe };
  }

  function expectOnly(answers: Answer[], allowed: Record<number, string[] | null>) {
    for (const a of answers) {
      expect(Object.keys(allowed).map(Number), a.text).toContain(a.status);
      const codes = allowed[a.status];
      if (codes) expect(codes, a.text).toContain(a.json.code);
    }
  }

  it('the same POST /refund-async to both processes makes one refund', async () => {
    const pi = await paid(5000);
    const requestId = `same-async-${randomBytes(4).toString('hex')}`;
    const answers = await race('/refund-async', {
      payment_intent_id: pi,
      amount: 2000,
      request_id: requestId,
    });
    expectOnly(answers, { 202: null });
    for (const a of answers) expect(a.json).toMatchObject({ request_id: requestId, status: 'queued' });
    const { rows, atStripe } = await settledAndAgreeing(pi, 5000);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'succeeded', amount: 2000 });
    expect(atStripe).toHaveLength(1);
  });

  it('the same POST /refund to both processes makes one refund', async () => {
    const pi = await paid(5000);
    const requestId = `same-sync-${randomBytes(4).toString('hex')}`;
    const answers = await race('/refund', { payment_intent_id: pi, amount: 2000, request_id: requestId });
    expectOnly(answers, { 200: null, 409: ['refund_in_progress'] });
    const ok = answers.filter((a) => a.status === 200);
    expect(ok.length).toBeGreaterThan(0);
    expect(new Set(ok.map((a) => (a.json.refund as { id: string }).id)).size).toBe(1);
    const { rows, atStripe } = await settledAndAgreeing(pi, 5000);
    expect(rows).toHaveLength(1);
    expect(atStripe).toHaveLength(1);
  });

  it('the same Idempotency-Key on POST /payment-intent to both processes charges once', async () => {
    const tag = randomBytes(6).toString('hex');
    const answers = await race(
      '/payment-intent',
      { amount: 4321, currency: 'usd', payment_method: 'pm_card_visa', confirm: true, metadata: { tag } },
      { 'idempotency-key': `pi-${tag}` },
    );
    expectOnly(answers, { 200: null, 409: ['idempotency_key_in_use'] });
    for (const a of answers.filter((x) => x.status === 409)) expect(a.headers.get('retry-after')).toBe('1');
    const ok = answers.filter((a) => a.status === 200);
    expect(ok.length).toBeGreaterThan(0);
    expect(new Set(ok.map((a) => a.text)).size).toBe(1);
    const intents = (
      await rig.stripe.stripe.paymentIntents.list({ limit: 100 }).autoPagingToArray({ limit: 10_000 })
    ).filter((p) => p.metadata?.tag === tag);
    expect(intents.map((p) => p.status)).toEqual(['succeeded']);
    // A retry after the race replays the one answer.
    const again = await postJson(
      `${b.url}/payment-intent`,
      { amount: 4321, currency: 'usd', payment_method: 'pm_card_visa', confirm: true, metadata: { tag } },
      { 'idempotency-key': `pi-${tag}` },
    );
    expect(again.status).toBe(200);
    expect(again.text).toBe(ok[0]!.text);
  });

  it('the same Idempotency-Key on POST /refund without request_id to both processes refunds once', async () => {
    const pi = await paid(5000);
    const key = `refund-${randomBytes(6).toString('hex')}`;
    const answers = await race(
      '/refund',
      { payment_intent_id: pi, amount: 1500 },
      { 'idempotency-key': key },
    );
    expectOnly(answers, { 200: null, 409: ['idempotency_key_in_use', 'refund_in_progress'] });
    const { rows, atStripe } = await settledAndAgreeing(pi, 5000);
    expect(rows).toHaveLength(1);
    expect(atStripe).toHaveLength(1);
    // And a later retry through either process finds that refund.
    const again = await postJson(
      `${rig.svc.url}/refund`,
      { payment_intent_id: pi, amount: 1500 },
      {
        'idempotency-key': key,
      },
    );
    expect(again.status, again.text).toBe(200);
    expect((again.json.refund as { id: string }).id).toBe(rows[0]!.stripe_refund_id);
  });

  it('many refunds of one payment through both processes and every path never exceed it', async () => {
    const amount = 10_000;
    const pi = await paid(amount);
    // 40 refunds of 700 (28 000 asked for 10 000 paid), mixing both paths, both processes, with and without
    // an Idempotency-Key (the transactional accept) and plain async (PostgreSQL's one-statement accept).
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => {
        const url = urls()[i % 2]!;
        const kind = i % 4;
        const body = { payment_intent_id: pi, amount: 700, request_id: `over-${pi}-${i}` };
        if (kind === 0) return postJson(`${url}/refund-async`, body);
        if (kind === 1)
          return postJson(`${url}/refund-async`, body, { 'idempotency-key': `over-${pi}-${i}` });
        if (kind === 2) return postJson(`${url}/refund`, body);
        return postJson(
          `${url}/refund`,
          { payment_intent_id: pi, amount: 700 },
          { 'idempotency-key': `o-${pi}-${i}` },
        );
      }),
    );
    expectOnly(answers, {
      200: null,
      202: null,
      409: ['amount_exceeds_refundable', 'charge_already_refunded'],
    });
    const accepted = answers.filter((a) => a.status === 200 || a.status === 202);
    expect(accepted.length * 700).toBeLessThanOrEqual(amount);
    // 14 of 700 fit: as many as fit were taken (no request was refused while money was left).
    expect(accepted).toHaveLength(14);
    const { rows, atStripe } = await settledAndAgreeing(pi, amount);
    expect(rows).toHaveLength(14);
    expect(atStripe.reduce((s, r) => s + r.amount, 0)).toBe(14 * 700);
    expect(rows.every((r) => r.status === 'succeeded')).toBe(true);
  });

  it('the same refund request through both paths and both processes at once makes one refund', async () => {
    const pi = await paid(5000);
    const requestId = `mixed-${randomBytes(4).toString('hex')}`;
    const body = { payment_intent_id: pi, amount: 3000, request_id: requestId };
    const answers = await Promise.all(
      Array.from({ length: N }, (_, i) => {
        const url = urls()[i % 2]!;
        if (i % 3 === 0) return postJson(`${url}/refund-async`, body);
        if (i % 3 === 1)
          return postJson(`${url}/refund-async`, body, { 'idempotency-key': `mixed-${requestId}-${i}` });
        return postJson(`${url}/refund`, body);
      }),
    );
    expectOnly(answers, { 200: null, 202: null, 409: ['refund_in_progress'] });
    const { rows, atStripe } = await settledAndAgreeing(pi, 5000);
    expect(rows).toHaveLength(1);
    expect(atStripe).toHaveLength(1);
  });

  it('refunds of what is left, of a payment the ledger has never seen, through both processes take it once', async () => {
    // Made at Stripe directly: both processes must first learn it (the transactional path), then race.
    const pi = (
      await rig.stripe.stripe.paymentIntents.create({
        amount: 6000,
        currency: 'usd',
        payment_method: 'pm_card_visa',
        automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
        confirm: true,
      })
    ).id;
    const answers = await Promise.all(
      Array.from({ length: N }, (_, i) => {
        const body = { payment_intent_id: pi, request_id: `rest-${pi}-${i}` };
        return postJson(`${urls()[i % 2]}${i % 3 === 0 ? '/refund' : '/refund-async'}`, body);
      }),
    );
    expectOnly(answers, { 200: null, 202: null, 409: ['charge_already_refunded'] });
    expect(answers.filter((a) => a.status < 300)).toHaveLength(1);
    const { rows, atStripe } = await settledAndAgreeing(pi, 6000);
    expect(rows.map((r) => r.amount)).toEqual([6000]);
    expect(atStripe).toHaveLength(1);
  });

  it('refunds whose answers Stripe drops, retried at the other process while its webhooks land there, refund once', async () => {
    const amount = 10_000;
    const pi = await paid(amount);
    await rig.stripe.faults({ drop_rate: 1, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    try {
      const bodies = Array.from({ length: 12 }, (_, i) => ({
        payment_intent_id: pi,
        amount: 1500,
        request_id: `drop-${pi}-${i}`,
      }));
      const first = await Promise.all(bodies.map((body, i) => postJson(`${urls()[i % 2]}/refund`, body)));
      expectOnly(first, { 503: ['upstream_unavailable'], 409: ['amount_exceeds_refundable'] });
      // The clients retry each at the other process, twice, at once.
      const retries = await Promise.all(
        bodies.flatMap((body, i) => [
          postJson(`${urls()[(i + 1) % 2]}/refund`, body),
          postJson(`${urls()[(i + 1) % 2]}/refund-async`, body),
        ]),
      );
      expectOnly(retries, {
        200: null,
        202: null,
        503: ['upstream_unavailable'],
        409: ['amount_exceeds_refundable', 'refund_in_progress'],
      });
    } finally {
      await rig.stripe.faults({});
    }
    const { rows, atStripe } = await settledAndAgreeing(pi, amount);
    expect(rows.filter((r) => r.status === 'succeeded')).toHaveLength(6);
    expect(atStripe).toHaveLength(6);
  });

  it('copies of one refund message taken by both workers at once make one refund and announce no failure', async () => {
    const pi = await paid(5000);
    const requestId = `dup-${randomBytes(4).toString('hex')}`;
    // Slow refunds at Stripe, so that both workers are in the call at once.
    await rig.stripe.faults({ latency_ms: 1500, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    try {
      const accepted = await postJson(`${rig.svc.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 2500,
        request_id: requestId,
      });
      expect(accepted.status, accepted.text).toBe(202);
      // As a relay republishing after a lease ran out, or two sweeps, would: more copies of its message.
      await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          rig.peek.publishRaw(
            rig.topology.requests,
            Buffer.from(JSON.stringify({ request_key: requestId })),
            `${requestId}#copy-${i}`,
          ),
        ),
      );
      const { row, statuses } = await watchUntilSucceeded(pi);
      expect(row?.status).toBe('succeeded');
      expect([...statuses]).not.toContain('failed');
    } finally {
      await rig.stripe.faults({});
    }
    const { rows, atStripe } = await settledAndAgreeing(pi, 5000);
    expect(rows).toHaveLength(1);
    expect(atStripe).toHaveLength(1);
  });

  it('a copy on its last attempt, taken while the other process has the refund at Stripe, does not fail it', async () => {
    const pi = await paid(5000);
    const requestId = `last-${randomBytes(4).toString('hex')}`;
    await rig.stripe.faults({ latency_ms: 1500, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    const conn = await connect(RABBITMQ_URL);
    try {
      const accepted = await postJson(`${rig.svc.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 2500,
        request_id: requestId,
      });
      expect(accepted.status, accepted.text).toBe(202);
      await waitFor(
        () => ledger(pi),
        (rs) => rs[0]?.status === 'processing',
        5_000,
        10,
      );
      // Copies of its message (a relay's republish, a sweep's) whose retries are spent: their last attempt.
      const ch = await conn.createConfirmChannel();
      for (let i = 0; i < 4; i++)
        ch.sendToQueue(rig.topology.requests, Buffer.from(JSON.stringify({ request_key: requestId })), {
          persistent: true,
          messageId: `${requestId}#copy-${i}`,
          contentType: 'application/json',
          headers: { 'x-retry-attempt': 5 },
        });
      await ch.waitForConfirms();
      const { statuses } = await watchUntilSucceeded(pi);
      // The ledger never said failed (a client reading that would ask for the refund again), and the outcomes
      // other services read say succeeded only.
      expect([...statuses]).not.toContain('failed');
      const outcomes: { request_id: string; status: string }[] = [];
      await waitFor(
        async () => {
          for (const m of await rig.peek.drain(rig.topology.responses))
            outcomes.push(JSON.parse(m.body) as { request_id: string; status: string });
          return outcomes.filter((o) => o.request_id === requestId).map((o) => o.status);
        },
        (seen) => seen.includes('succeeded'),
        10_000,
      );
      expect(outcomes.filter((o) => o.request_id === requestId).map((o) => o.status)).toEqual(['succeeded']);
    } finally {
      await conn.close();
      await rig.stripe.faults({});
    }
    const { rows, atStripe } = await settledAndAgreeing(pi, 5000);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.status).toBe('succeeded');
    expect(atStripe).toHaveLength(1);
  });
});
