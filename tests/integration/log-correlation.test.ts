/**
 * What an operator reads during an incident: a refund followed through its lines by one id, from the request that
 * asked for it, through the worker and its Stripe calls, to the webhook that confirms it; and a failure logged once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson, postSignedWebhook } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { postgresAvailable } from '../helpers/services.js';
import { databases, paidThroughService, rabbitReady, until, useRig } from '../webhooks/support/rig.js';

const pgOk = await postgresAvailable();
const rabbit = await rabbitReady('log lines of a refund through RabbitMQ');

interface Line {
  level: number;
  msg: string;
  reqId?: string;
  request_id?: string;
  payment_intent?: string;
  eventId?: string;
  type?: string;
  method?: string;
  path?: string;
  status?: number;
  queue?: string;
  operationId?: string;
  err?: unknown;
}

describe('log lines of one piece of work carry its ids', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('sqlite');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  const lines = (from = 0) => svc.lines.slice(from).map((l) => JSON.parse(l) as Line);

  // The worker's Stripe calls were logged with Stripe's request id only, its 'queued refund made' without the
  // payment intent, and the refund's webhooks with the event id only: from the refund's request_id, an operator
  // found that it was queued and made, but not the calls to Stripe nor the webhook that confirmed it. And the
  // worker's lines did not carry the reqId of the request that asked for the refund: from the X-Request-Id a client
  // reported, an operator found that the refund was queued, not what became of it.
  it("an async refund: the request, the Stripe call, the outcome and the webhook all carry its request_id; the worker's lines the request's reqId", async () => {
    const pi = await paidIntent(svc.url, 5000);
    const from = svc.lines.length;
    const res = await postJson(
      `${svc.url}/refund-async`,
      { payment_intent_id: pi, amount: 700, request_id: 'trace-async-1' },
      { 'x-request-id': 'trace-async-req' },
    );
    expect(res.status).toBe(202);
    const done = await eventually(
      () => getJson(`${svc.url}/refund-status/trace-async-1`),
      (r) => r.json.status === 'succeeded',
    );
    expect(done.json.status).toBe('succeeded');
    // The sandbox sends refund.created once the refund is made.
    const mine = await eventually(
      async () => lines(from).filter((l) => l.request_id === 'trace-async-1'),
      (ls) => ls.some((l) => l.msg === 'webhook received'),
    );
    const ids = { request_id: 'trace-async-1', payment_intent: pi };
    expect(mine).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ msg: 'refund queued', reqId: 'trace-async-req', ...ids }),
        expect.objectContaining({
          msg: 'stripe call',
          method: 'POST',
          path: '/v1/refunds',
          reqId: 'trace-async-req',
          ...ids,
        }),
        expect.objectContaining({ msg: 'queued refund made', reqId: 'trace-async-req', ...ids }),
        expect.objectContaining({ msg: 'webhook received', type: 'refund.created', ...ids }),
      ]),
    );
    // The webhook's line carries the id of the request that delivered it, as that request's own line does.
    const received = mine.find((l) => l.msg === 'webhook received')!;
    expect(lines(from)).toContainEqual(
      expect.objectContaining({
        msg: 'request completed',
        operationId: 'handleStripeWebhook',
        reqId: received.reqId,
      }),
    );
  });

  // The Stripe call a POST /refund made was logged without the request's id.
  it("a POST /refund: its Stripe call's line carries the request's reqId", async () => {
    const pi = await paidIntent(svc.url, 5000);
    const from = svc.lines.length;
    const res = await postJson(
      `${svc.url}/refund`,
      { payment_intent_id: pi, amount: 300 },
      { 'x-request-id': 'trace-sync-req' },
    );
    expect(res.status).toBe(200);
    const mine = lines(from).filter((l) => l.reqId === 'trace-sync-req');
    expect(mine.map((l) => [l.msg, l.method, l.path])).toEqual([
      ['stripe call', 'POST', '/v1/refunds'],
      ['refund made', undefined, undefined],
      ['request completed', undefined, undefined],
    ]);
  });

  // A GET /payment-intent/{id} asked Stripe for the intent, and that call's line did not carry the request's id.
  it("a GET /payment-intent/{id}: its Stripe call's line carries the request's reqId", async () => {
    const pi = await paidIntent(svc.url, 800);
    const from = svc.lines.length;
    const res = await getJson(`${svc.url}/payment-intent/${pi}`, { 'x-request-id': 'trace-get-req' });
    expect(res.status).toBe(200);
    const mine = lines(from).filter((l) => l.reqId === 'trace-get-req');
    expect(mine.map((l) => [l.msg, l.method, l.path, l.payment_intent])).toEqual([
      ['stripe call', 'GET', `/v1/payment_intents/${pi}`, pi],
      ['request completed', undefined, undefined, undefined],
    ]);
  });

  // Stripe failing a POST /refund was logged twice with its error, as two warnings: by the refund service
  // ('refund outcome unknown; handed to the worker', with Stripe's error) and by the error handler ('upstream
  // failure', with the 503 caused by it). And the worker's lines about the refund handed to it did not carry the
  // request's reqId.
  it("Stripe failing a POST /refund is one line with the error, which names Stripe's error as the cause; the worker that finishes it logs the request's reqId", async () => {
    const pi = await paidIntent(svc.url, 5000);
    const from = svc.lines.length;
    await svc.faults({ error_rate: 1, match: { path_prefix: '/v1/refunds' } });
    try {
      const res = await postJson(
        `${svc.url}/refund`,
        { payment_intent_id: pi, amount: 300, request_id: 'trace-down-1' },
        { 'x-request-id': 'trace-down-req' },
      );
      expect(res.status).toBe(503);
    } finally {
      await svc.faults({});
    }
    const done = await eventually(
      () => getJson(`${svc.url}/refund-status/trace-down-1`),
      (r) => r.json.status === 'succeeded',
    );
    expect(done.json.status).toBe('succeeded');
    const all = await eventually(
      async () => lines(from).filter((l) => l.reqId === 'trace-down-req'),
      (ls) => ls.some((l) => l.msg === 'queued refund made'),
    );
    // The worker made the refund handed to it, and its lines say for which request.
    expect(all).toContainEqual(
      expect.objectContaining({ msg: 'queued refund made', request_id: 'trace-down-1', payment_intent: pi }),
    );
    // The request's own lines end with its answer. The worker's come after: it takes the refund from the outbox at
    // the relay's next poll, and its Stripe calls, failing until the fault is lifted, are retried after a pause.
    const mine = all.slice(0, all.findIndex((l) => l.msg === 'request completed') + 1);
    expect(mine.filter((l) => l.err !== undefined).map((l) => [l.msg, l.level])).toEqual([
      ['upstream failure', 40],
    ]);
    expect(mine.find((l) => l.err !== undefined)!.err).toMatchObject({
      cause: { errorType: 'StripeAPIError', statusCode: 500 },
    });
    expect(mine.filter((l) => l.msg !== 'stripe call').map((l) => [l.msg, l.level])).toEqual([
      ['refund outcome unknown; handed to the worker', 30],
      ['upstream failure', 40],
      ['request completed', 40],
    ]);
  });
});

describe.skipIf(!pgOk)('a webhook event the ledger cannot take (PostgreSQL)', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('postgres');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  const lines = () => svc.lines.map((l) => JSON.parse(l) as Line);

  // Applying the event failed, then recording that failure failed too: two lines, an error ('could not record a
  // failure') and a warning ('webhook event failed; will retry', with a retry time that was never recorded).
  it('applying it and recording the failure both failing is one line with both errors', async () => {
    const eventId = `evt_logs${Date.now()}`;
    const body = JSON.stringify({
      id: eventId,
      object: 'event',
      type: 'payment_intent.created',
      created: Math.floor(Date.now() / 1000),
      data: { object: { id: 'pi_logsinbox1', object: 'payment_intent', amount: 100, status: 'succeeded' } },
    });
    // Every update of a stored event is refused: marking it applied, and marking it failed.
    await svc.sql(`CREATE FUNCTION refuse_inbox_update() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'injected inbox failure'; END $$;
      CREATE TRIGGER refuse_inbox_update BEFORE UPDATE ON webhook_events FOR EACH ROW
        EXECUTE FUNCTION refuse_inbox_update();`);
    let mine: Line[];
    try {
      const res = await postSignedWebhook(svc.url, svc.deps.webhookSecret, body);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      mine = await eventually(
        async () => lines().filter((l) => l.eventId === eventId),
        (ls) => ls.some((l) => l.level >= 40),
      );
      await svc.deps.webhooks.idle();
    } finally {
      await svc.sql(
        'DROP TRIGGER refuse_inbox_update ON webhook_events; DROP FUNCTION refuse_inbox_update();',
      );
    }
    mine = lines().filter((l) => l.eventId === eventId && l.level >= 30);
    expect(mine.map((l) => [l.msg, l.level])).toEqual([
      ['webhook received', 30],
      ['webhook event failed, and so did recording the failure; the retry sweep takes it again', 50],
    ]);
    expect(mine[1]).toMatchObject({
      err: { message: expect.stringContaining('injected inbox failure') },
      recordErr: { message: expect.stringContaining('injected inbox failure') },
    });
  });
});

describe.skipIf(!rabbit).each(await databases())('a refund through RabbitMQ [%s]', (db) => {
  const rig = useRig(db, 'log-reqid');

  async function faults(config: Record<string, unknown> | null): Promise<void> {
    const res = await fetch(`${rig.sandbox.url}/_sandbox/faults`, {
      method: config ? 'POST' : 'DELETE',
      headers: { 'content-type': 'application/json' },
      ...(config ? { body: JSON.stringify(config) } : {}),
    });
    expect(res.ok).toBe(true);
  }

  // The worker's lines, and the queue's about the refund's message, did not carry the reqId of the request that
  // asked for the refund; a retry goes through a delay queue of RabbitMQ's, and the id must come back with it.
  it("the worker's lines, its retry's included, carry the reqId of the request that asked for the refund", async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa');
    const requestId = `trace-rabbit-${db}`;
    const reqId = `trace-rabbit-req-${db}`;
    const from = rig.svc.lines.length;
    const logged = () => rig.svc.lines.slice(from).map((l) => JSON.parse(l) as Line);
    // Stripe fails the worker's first try at the refund (a 500 the worker retries), and only that one.
    await faults({ error_rate: 1, match: { method: 'POST', path_prefix: '/v1/refunds' } });
    try {
      const res = await postJson(
        `${rig.svc.url}/refund-async`,
        { payment_intent_id: pi, amount: 400, request_id: requestId },
        { 'x-request-id': reqId },
      );
      expect(res.status).toBe(202);
      await until(
        () =>
          logged().some((l) => l.msg === 'refund attempt failed; will retry' && l.request_id === requestId),
        'the first try to fail',
      );
    } finally {
      await faults(null);
    }
    await until(
      () => logged().some((l) => l.msg === 'queued refund made' && l.request_id === requestId),
      'the refund to be made',
    );
    const ids = { reqId, request_id: requestId, payment_intent: pi };
    expect(logged().filter((l) => l.reqId === reqId)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ msg: 'refund queued', ...ids }),
        expect.objectContaining({
          msg: 'stripe call',
          method: 'POST',
          path: '/v1/refunds',
          status: 500,
          ...ids,
        }),
        expect.objectContaining({ msg: 'refund attempt failed; will retry', ...ids }),
        expect.objectContaining({ msg: 'message scheduled for retry', queue: rig.topology.requests, reqId }),
        expect.objectContaining({
          msg: 'stripe call',
          method: 'POST',
          path: '/v1/refunds',
          status: 200,
          ...ids,
        }),
        expect.objectContaining({ msg: 'queued refund made', ...ids }),
      ]),
    );
  });
});
