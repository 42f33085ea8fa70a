/**
 * What an operator reads during an incident: a refund followed through its lines by one id, from the request that
 * asked for it, through the worker and its Stripe calls, to the webhook that confirms it; and a failure logged once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

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
  // found that it was queued and made, but not the calls to Stripe nor the webhook that confirmed it.
  it('an async refund: the request, the Stripe call, the outcome and the webhook all carry its request_id', async () => {
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
        expect.objectContaining({ msg: 'stripe call', method: 'POST', path: '/v1/refunds', ...ids }),
        expect.objectContaining({ msg: 'queued refund made', ...ids }),
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

  // Stripe failing a POST /refund was logged twice with its error, as two warnings: by the refund service
  // ('refund outcome unknown; handed to the worker', with Stripe's error) and by the error handler ('upstream
  // failure', with the 503 caused by it).
  it("Stripe failing a POST /refund is one line with the error, which names Stripe's error as the cause", async () => {
    const pi = await paidIntent(svc.url, 5000);
    const from = svc.lines.length;
    await svc.faults({ error_rate: 1, match: { path_prefix: '/v1/refunds' } });
    try {
      const res = await postJson(
        `${svc.url}/refund`,
        { payment_intent_id: pi, amount: 300 },
        { 'x-request-id': 'trace-down-req' },
      );
      expect(res.status).toBe(503);
    } finally {
      await svc.faults({});
    }
    const mine = lines(from).filter((l) => l.reqId === 'trace-down-req');
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
