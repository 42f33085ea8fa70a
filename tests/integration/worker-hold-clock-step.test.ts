/**
 * A worker whose database stops answering keeps the refund's message and runs the refund again once the database
 * answers, for up to 5 minutes per delivery ("an outage spends neither the worker's attempts nor RabbitMQ's
 * delivery limit"). Those 5 minutes are elapsed time: a step of the wall clock (NTP correcting a VM's clock after
 * a pause, an operator) must neither end the wait early (the delivery fails and is spent) nor stretch it.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { gateRefundCreate } from '../helpers/stripe-gate.js';
import { POSTGRES_URL, postgresAvailable } from '../helpers/services.js';

const pgOk = await postgresAvailable();

let svc: TestService;
beforeAll(async () => {
  if (!pgOk) return;
  svc = await startTestService('postgres', {
    API_AUTH: 'off',
    STRIPE_MAX_NETWORK_RETRIES: '0',
    // A statement blocked this long counts as the database not answering.
    DATABASE_TIMEOUT_MS: '400',
  });
});
afterEach(() => {
  vi.useRealTimers();
});
afterAll(async () => {
  await svc?.stop();
});

it.skipIf(!pgOk)(
  "a wall-clock step forward during a database outage does not cut the worker's wait short",
  async () => {
    const pi = await paidIntent(svc.url, 5000);
    const requestId = `hold-step-${randomBytes(4).toString('hex')}`;
    const schema = String((await svc.sql('SELECT current_schema() AS s'))[0]!['s']);
    const gate = gateRefundCreate(svc.deps.stripe);
    const holder = new pg.Client({ connectionString: POSTGRES_URL });
    await holder.connect();
    try {
      await holder.query(`SET search_path TO "${schema}"`);
      await holder.query('BEGIN');
      const res = await postJson(`${svc.url}/refund-async`, {
        payment_intent_id: pi,
        amount: 700,
        request_id: requestId,
      });
      expect(res.status).toBe(202);
      await gate.entered; // the worker is at Stripe; recording its answer will wait for the refund row
      await holder.query('SELECT 1 FROM refunds WHERE request_id = $1 FOR UPDATE', [requestId]);
      gate.release();
      await eventually(
        async () =>
          svc.lines.some(
            (l) => l.includes('store unavailable; the refund waits for it') && l.includes(requestId),
          ),
        (seen) => seen,
        10_000,
      );
      // The wall clock steps 6 minutes forward while the worker waits (only Date is faked: timers run as usual).
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() + 6 * 60_000);
      // Several more rounds of waiting, each blocked on the row again.
      await new Promise((r) => setTimeout(r, 3_000));
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
      gate.restore();
    }
    const done = await eventually(
      () => getJson(`${svc.url}/refund-status/${requestId}`),
      (r) => r.json.status === 'succeeded',
      15_000,
    );
    expect(done.json.amount).toBe(700);
    // The delivery was kept through the outage, not failed and handed back to the queue.
    const failed = svc.lines.filter(
      (l) => l.includes('refund worker failed on a message') && l.includes(requestId),
    );
    expect(failed).toEqual([]);
  },
);
