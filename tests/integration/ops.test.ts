/**
 * What operators see: liveness, readiness naming the failing dependency, Prometheus figures that move
 * when work is done, and reconciliation finding drift made behind the service's back.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { loadConfig } from '../../src/config/index.js';
import { OWNER_METADATA_KEY } from '../../src/payments/service.js';
import { reconcile } from '../../src/reconcile/index.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { startService } from '../../src/service.js';
import { captureLogger } from '../helpers/log-capture.js';
import { getJson, postJson, postSignedWebhook } from '../helpers/http.js';
import { freePort } from '../helpers/processes.js';
import { RABBITMQ_URL, postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import { proxyFor, startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { deleteEverything, openAdmin, topologyFor, uniquePrefix } from '../queue/support/rabbit.js';
import {
  eventually,
  startSharedStripe,
  startTestService,
  startTestServiceBehindProxy,
  type TestService,
} from '../helpers/service.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');

function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (want.every((w) => line.includes(w))) total += Number(line.split(' ').pop());
  }
  return total;
}

describe('health and readiness', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('sqlite');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('/healthz answers 200 ok', async () => {
    const res = await getJson(`${svc.url}/healthz`);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({ status: 'ok' });
  });

  it('/readyz answers 200 with each dependency checked', async () => {
    const res = await getJson(`${svc.url}/readyz`);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      status: 'ok',
      checks: { store: 'ok', broker: 'not_configured', stripe: 'ok' },
    });
  });

  // An API process answered 503 here, so a RabbitMQ outage took every API process out of its load balancer and
  // stopped payments, which never need RabbitMQ, while queued refunds would have waited in the outbox anyway.
  it('/readyz stays ready naming RabbitMQ degraded when the broker cannot be reached by a process serving the API', async () => {
    const closed = await freePort();
    const down = await startTestService('sqlite', { RABBITMQ_URL: `amqp://guest:guest@127.0.0.1:${closed}` });
    try {
      const res = await getJson(`${down.url}/readyz`);
      expect(res.status).toBe(200);
      expect(res.json).toEqual({
        status: 'ok',
        degraded: ['broker'],
        checks: { broker: 'down', store: 'ok', stripe: 'ok' },
        reasons: { broker: 'RabbitMQ is not connected' },
      });
      // The API accepts work while the broker is away: it waits in the outbox.
      const pi = await postJson(`${down.url}/payment-intent`, {
        amount: 1000,
        currency: 'usd',
        payment_method: 'pm_card_visa',
        confirm: true,
      });
      const queued = await postJson(`${down.url}/refund-async`, {
        payment_intent_id: pi.json.paymentIntentId,
      });
      expect(queued.status).toBe(202);
      expect(await down.deps.store.outbox.pendingCount()).toBeGreaterThan(0);
    } finally {
      await down.stop();
    }
  });

  it.each([
    { role: 'api', ready: true },
    { role: 'worker', ready: false },
  ])(
    'answers /healthz while RabbitMQ is still connecting; ROLE=$role ready: $ready',
    async ({ role, ready: serves }) => {
      // A broker that accepts the TCP connection and never answers the AMQP handshake.
      const sockets = new Set<net.Socket>();
      const silent = net.createServer((socket) => {
        sockets.add(socket);
        socket.on('error', () => undefined);
      });
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const brokerPort = (silent.address() as net.AddressInfo).port;
      const port = await freePort();
      const { logger } = captureLogger('info');
      const stripe = await startSharedStripe();
      const starting = startService(
        loadConfig({
          NODE_ENV: 'test',
          PORT: String(port),
          HOST: '127.0.0.1',
          LOG_LEVEL: 'info',
          ROLE: role,
          DATABASE_URL: 'sqlite::memory:',
          RABBITMQ_URL: `amqp://guest:guest@127.0.0.1:${brokerPort}`,
          ...stripe.env,
        }),
        logger,
      );
      let started = false;
      void starting.then(() => (started = true)).catch(() => undefined);
      try {
        const url = `http://127.0.0.1:${port}`;
        const health = await eventually(
          () => getJson(`${url}/healthz`).catch(() => ({ status: 0, json: {} })),
          (r) => r.status === 200,
        );
        expect(health.json).toEqual({ status: 'ok' });
        // The broker is still in its handshake. An API process already serves (a refund waits in the outbox), so it
        // is ready, naming the broker; a worker cannot work, so it is not.
        expect(started).toBe(false);
        expect(sockets.size).toBeGreaterThan(0);
        const ready = await getJson(`${url}/readyz`);
        expect(ready.status).toBe(serves ? 200 : 503);
        expect(ready.json).toMatchObject({
          status: serves ? 'ok' : 'unavailable',
          [serves ? 'degraded' : 'failing']: ['broker'],
          checks: { broker: 'down', store: 'ok' },
        });
        expect(ready.json[serves ? 'failing' : 'degraded']).toBeUndefined();
      } finally {
        const svc = await starting;
        await svc.close();
        await stripe.close();
        for (const socket of sockets) socket.destroy();
        silent.close();
      }
    },
    20_000,
  );

  // An API process answered 503 here, so a Stripe outage took every API process out of its load balancer: webhooks,
  // refund status and queued refunds, which need no Stripe, stopped with the payments, and each payment call got the
  // load balancer's bare error instead of its own problem.
  it('/readyz stays ready naming Stripe degraded when Stripe fails; what needs no Stripe still works', async () => {
    const pi = await postJson(`${svc.url}/payment-intent`, {
      amount: 1000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    expect(pi.status).toBe(200);
    await svc.faults({ error_rate: 1 });
    try {
      await new Promise((r) => setTimeout(r, 5100)); // past the cached Stripe answer
      const res = await getJson(`${svc.url}/readyz`);
      expect(res.status).toBe(200);
      expect(res.json).toEqual({
        status: 'ok',
        degraded: ['stripe'],
        checks: { store: 'ok', broker: 'not_configured', stripe: 'down' },
        reasons: { stripe: 'Stripe answers with server errors' },
      });
      const payment = await postJson(`${svc.url}/payment-intent`, { amount: 1000, currency: 'usd' });
      expect(payment.status).toBeGreaterThanOrEqual(502);
      expect(payment.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const queued = await postJson(`${svc.url}/refund-async`, {
        payment_intent_id: pi.json.paymentIntentId,
        request_id: 'while-stripe-is-down',
      });
      expect(queued.status).toBe(202);
      expect((await getJson(`${svc.url}/refund-status/while-stripe-is-down`)).status).toBe(200);
    } finally {
      await svc.faults({});
    }
  }, 20_000);

  it('/readyz answers 503 naming Stripe when Stripe refuses the key (a wrong STRIPE_SECRET_KEY)', async () => {
    const sandbox = await startSandbox({ secretKey: 'sk_test_theKeyStripeKnows0000000002' });
    const wrong = await startTestService('sqlite', {
      STRIPE_SECRET_KEY: 'sk_test_aKeyStripeDoesNotKnow00002',
      STRIPE_API_BASE: sandbox.url,
      API_AUTH: 'off',
    });
    try {
      const res = await getJson(`${wrong.url}/readyz`);
      expect(res.status).toBe(503);
      expect(res.json).toEqual({
        status: 'unavailable',
        failing: ['stripe'],
        checks: { store: 'ok', broker: 'not_configured', stripe: 'down' },
        reasons: { stripe: "Stripe refuses this process's key (STRIPE_SECRET_KEY)" },
      });
    } finally {
      await wrong.stop();
      await sandbox.close();
    }
  });
});

describe.skipIf(!(await rabbitAvailable()))('readiness with RabbitMQ', () => {
  it('/readyz reports the broker ok when connected', async () => {
    const prefix = uniquePrefix('ops');
    const svc = await startTestService('sqlite', { RABBITMQ_URL }, { topology: topologyFor(prefix) });
    try {
      const res = await eventually(
        () => getJson(`${svc.url}/readyz`),
        (r) => r.status === 200,
        10_000,
      );
      expect(res.json.checks).toMatchObject({ broker: 'ok' });
      const metrics = await (await fetch(`${svc.url}/metrics`)).text();
      expect(metrics).toMatch(/payments_queue_depth\{queue="requests"\} \d+/);
      expect(metricValue(metrics, 'payments_broker_connected')).toBe(1);
    } finally {
      await svc.stop();
      await deleteEverything(prefix);
    }
  });

  it('a worker process (ROLE=worker) is not ready while Stripe fails', async () => {
    const prefix = uniquePrefix('opsw');
    const stripe = await startSharedStripe();
    const worker = await startTestService(
      'sqlite',
      { RABBITMQ_URL, ROLE: 'worker', ...stripe.env },
      { topology: topologyFor(prefix) },
    );
    try {
      await eventually(
        () => getJson(`${worker.url}/readyz`),
        (r) => r.status === 200,
        10_000,
      );
      await stripe.faults({ error_rate: 1 });
      await new Promise((r) => setTimeout(r, 5100)); // past the cached Stripe answer
      const res = await getJson(`${worker.url}/readyz`);
      expect(res.status).toBe(503);
      expect(res.json).toEqual({
        status: 'unavailable',
        failing: ['stripe'],
        checks: { store: 'ok', broker: 'ok', stripe: 'down' },
        reasons: { stripe: 'Stripe answers with server errors' },
      });
    } finally {
      await worker.stop();
      await stripe.close();
      await deleteEverything(prefix);
    }
  }, 30_000);
});

describe.skipIf(!(await rabbitAvailable()))('queue figures while RabbitMQ is unreachable', () => {
  // The gauge kept the last depth it had read: with RabbitMQ gone, a dead-letter queue showed its old figure for
  // as long as the outage lasted, as if it were known.
  it('payments_queue_depth has no series instead of the last depths read', async () => {
    const prefix = uniquePrefix('opsq');
    const via = await proxyFor(RABBITMQ_URL);
    const svc = await startTestService(
      'sqlite',
      { RABBITMQ_URL: via.url, ROLE: 'all' },
      { topology: topologyFor(prefix) },
    );
    try {
      const scrape = async () => (await fetch(`${svc.url}/metrics`)).text();
      expect(await scrape()).toMatch(/^payments_queue_depth\{queue="dead_letter"\} \d+$/m);
      await via.proxy.close(); // connections dropped, and new ones refused
      const down = await eventually(scrape, (t) => metricValue(t, 'payments_broker_connected') === 0);
      expect(metricValue(down, 'payments_broker_connected')).toBe(0);
      expect(down.split('\n').filter((l) => l.startsWith('payments_queue_depth{'))).toEqual([]);
    } finally {
      await svc.stop();
      await deleteEverything(prefix);
    }
  });
});

describe.skipIf(!(await rabbitAvailable()))('how long work has waited', () => {
  // Counts could not tell a backlog that moves from one that is stuck, so nothing could alert on a refund queued
  // for an hour or an outbox the relay had stopped draining.
  it('the oldest queued refund and outbox message show their age, and go back to 0 once done', async () => {
    const prefix = uniquePrefix('opsa');
    const rabbit = new URL(RABBITMQ_URL);
    const target = { host: rabbit.hostname, port: Number(rabbit.port || 5672) };
    let proxy = await startTcpProxy(target);
    const url = new URL(RABBITMQ_URL);
    url.hostname = proxy.host;
    url.port = String(proxy.port);
    const svc = await startTestService(
      'sqlite',
      { RABBITMQ_URL: url.toString(), ROLE: 'all' },
      { topology: topologyFor(prefix) },
    );
    try {
      const scrape = async () => (await fetch(`${svc.url}/metrics`)).text();
      const pi = await postJson(`${svc.url}/payment-intent`, {
        amount: 1000,
        currency: 'usd',
        payment_method: 'pm_card_visa',
        confirm: true,
      });
      await proxy.close();
      await eventually(scrape, (t) => metricValue(t, 'payments_broker_connected') === 0);
      const requestId = `aged-${prefix}`;
      const queued = await postJson(`${svc.url}/refund-async`, {
        payment_intent_id: pi.json.paymentIntentId,
        request_id: requestId,
      });
      expect(queued.status).toBe(202);
      await new Promise((r) => setTimeout(r, 2_200));
      const waiting = await scrape();
      expect(
        metricValue(waiting, 'payments_refunds_oldest_age_seconds', { status: 'queued' }),
      ).toBeGreaterThanOrEqual(2);
      expect(metricValue(waiting, 'payments_outbox_oldest_age_seconds')).toBeGreaterThanOrEqual(2);
      expect(metricValue(waiting, 'payments_refunds_oldest_age_seconds', { status: 'processing' })).toBe(0);

      proxy = await startTcpProxy(target, proxy.port); // RabbitMQ is back
      const done = await eventually(
        () => getJson(`${svc.url}/refund-status/${requestId}`),
        (r) => r.json?.status === 'succeeded',
        30_000,
      );
      expect(done.json.status).toBe('succeeded');
      const after = await eventually(scrape, (t) => metricValue(t, 'payments_outbox_backlog') === 0);
      expect(metricValue(after, 'payments_refunds_oldest_age_seconds', { status: 'queued' })).toBe(0);
      expect(metricValue(after, 'payments_outbox_oldest_age_seconds')).toBe(0);
      expect(after).toMatch(/^payments_outbox_oldest_age_seconds 0$/m);
    } finally {
      await svc.stop();
      await proxy.close();
      await deleteEverything(prefix);
    }
  }, 60_000);
});

describe.skipIf(!(await rabbitAvailable()))('a worker process (ROLE=worker)', () => {
  it('serves health, readiness and metrics, and answers every API path with a 404 naming its role', async () => {
    const prefix = uniquePrefix('opsw');
    const stripe = await startSharedStripe();
    const svc = await startTestService(
      'sqlite',
      { RABBITMQ_URL, ROLE: 'worker', ...stripe.env },
      { topology: topologyFor(prefix) },
    );
    try {
      expect(await getJson(`${svc.url}/healthz`)).toMatchObject({ status: 200, json: { status: 'ok' } });
      const ready = await eventually(
        () => getJson(`${svc.url}/readyz`),
        (r) => r.status === 200,
        10_000,
      );
      expect(ready.json.checks).toMatchObject({ store: 'ok', broker: 'ok' });
      const metrics = await (await fetch(`${svc.url}/metrics`)).text();
      expect(metrics).toMatch(/payments_queue_depth\{queue="requests"\} \d+/);
      // Its own requests are counted under their operation, as on an API process.
      expect(
        metricValue(metrics, 'payments_http_requests_total', { operation: 'getHealth' }),
      ).toBeGreaterThan(0);
      const api = await postJson(`${svc.url}/refund-async`, { payment_intent_id: 'pi_x', amount: 1 });
      expect(api.status).toBe(404);
      expect(api.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(api.json.detail).toMatch(/ROLE=worker/);
      expect(svc.deps.config.role).toBe('worker');
    } finally {
      await svc.stop();
      await stripe.close();
      await deleteEverything(prefix);
    }
  });

  // /readyz looked at the connection only: a worker whose subscription to the refund queue RabbitMQ had cancelled,
  // and which could not subscribe again, answered 200 on a live connection while it refunded nothing.
  it('is not ready while it is not subscribed to the refund queue, and ready again once it is', async () => {
    const prefix = uniquePrefix('opsc');
    const topology = topologyFor(prefix);
    const stripe = await startSharedStripe();
    const svc = await startTestService(
      'sqlite',
      { RABBITMQ_URL, ROLE: 'worker', ...stripe.env },
      { topology },
    );
    const admin = await openAdmin();
    try {
      const readyz = () => getJson(`${svc.url}/readyz`);
      expect((await eventually(readyz, (r) => r.status === 200, 10_000)).status).toBe(200);
      // The queue deleted under the worker (RabbitMQ cancels its consumer), and a queue of that name held
      // exclusively by another connection meanwhile, so the worker cannot subscribe again.
      const ch = await admin.channel();
      await ch.deleteQueue(topology.requests);
      await ch.assertQueue(topology.requests, { exclusive: true });
      const unsubscribed = await eventually(readyz, (r) => r.status === 503, 10_000);
      expect(unsubscribed.json).toMatchObject({
        status: 'unavailable',
        failing: ['broker'],
        reasons: { broker: 'the worker is not subscribed to the refund queue' },
      });
      expect(metricValue(await (await fetch(`${svc.url}/metrics`)).text(), 'payments_broker_connected')).toBe(
        1,
      );
      await admin.conn.close(); // the exclusive queue goes with its connection
      expect((await eventually(readyz, (r) => r.status === 200, 20_000)).status).toBe(200);
    } finally {
      await admin.conn.close().catch(() => undefined);
      await svc.stop();
      await stripe.close();
      await deleteEverything(prefix);
    }
  }, 40_000);
});

describe('metrics', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('sqlite');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  // On Stripe a pm_card_refundFail refund begins `succeeded` and later fails (https://docs.stripe.com/testing#refunds);
  // the failed count below is reached only because the ledger follows it from succeeded to failed.
  it('figures move when work is done', async () => {
    const scrape = async () => {
      const res = await fetch(`${svc.url}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      return res.text();
    };
    const paid = (amount: number, paymentMethod: string) =>
      postJson(`${svc.url}/payment-intent`, {
        amount,
        currency: 'usd',
        payment_method: paymentMethod,
        confirm: true,
      });
    const before = await scrape();
    const pi = await paid(5000, 'pm_card_visa');
    await postJson(`${svc.url}/refund`, { payment_intent_id: pi.json.paymentIntentId, amount: 1000 });
    await postJson(`${svc.url}/refund-async`, { payment_intent_id: pi.json.paymentIntentId, amount: 1000 });
    // Stripe reports this one succeeded, then fails it (a refund.failed webhook should move it here).
    const failing = await paid(3000, 'pm_card_refundFail');
    await postJson(`${svc.url}/refund`, { payment_intent_id: failing.json.paymentIntentId, amount: 3000 });
    await getJson(`${svc.url}/payment-intent/pi_missing_one`);
    await eventually(
      async () => await svc.deps.store.refunds.countByStatus(),
      (n) => (n.succeeded ?? 0) >= 2 && (n.failed ?? 0) >= 1,
    );
    await eventually(
      () => scrape(),
      (t) => metricValue(t, 'payments_webhook_events_total') > 0,
    );
    const after = await scrape();

    const delta = (name: string, labels: Record<string, string> = {}) =>
      metricValue(after, name, labels) - metricValue(before, name, labels);
    expect(delta('payments_http_requests_total', { operation: 'createPaymentIntent', status: '200' })).toBe(
      2,
    );
    expect(delta('payments_http_requests_total', { operation: 'getPaymentIntent', status: '404' })).toBe(1);
    expect(delta('payments_http_request_duration_seconds_count', { operation: 'createRefund' })).toBe(2);
    expect(
      delta('payments_stripe_requests_total', { operation: 'POST /v1/payment_intents', outcome: 'ok' }),
    ).toBe(2);
    expect(delta('payments_stripe_requests_total', { operation: 'POST /v1/refunds', outcome: 'ok' })).toBe(3);
    expect(
      delta('payments_stripe_requests_total', {
        operation: 'GET /v1/payment_intents/:id',
        outcome: 'client_error',
      }),
    ).toBe(1);
    // The gauge shows refunds still in flight (none left here); final ones are not re-counted per scrape.
    for (const status of ['queued', 'processing', 'pending', 'requires_action'])
      expect(after).toContain(`payments_refunds{status="${status}"} 0\n`);
    expect(after).not.toContain('payments_refunds{status="succeeded"}');
    // Each move into a final status is counted once, where it was committed: the failing refund succeeded
    // first, so it counts under succeeded and under failed.
    expect(delta('payments_refunds_final_total', { status: 'succeeded' })).toBe(3);
    expect(delta('payments_refunds_final_total', { status: 'failed' })).toBe(1);
    expect(after).toMatch(/payments_outbox_backlog \d+/);
    expect(after).toContain('payments_store_up 1\n');
    expect(
      delta('payments_webhook_events_total', { type: 'refund.created', outcome: 'processed' }),
    ).toBeGreaterThanOrEqual(2);
  });

  // The figures came from the SDK's 'response' event, which fires once per call for its last attempt only: a call
  // the SDK retried after two 500s counted as one request with the last attempt's latency, and a call that got no
  // answer at all (a dropped connection, Stripe unreachable) was not counted.
  it('count every HTTP request to Stripe, the SDK retries and the ones that got no answer included', async () => {
    const op = { operation: 'POST /v1/payment_intents' };
    const stripeCalls = async () => {
      const text = await (await fetch(`${svc.url}/metrics`)).text();
      return {
        ok: metricValue(text, 'payments_stripe_requests_total', { ...op, outcome: 'ok' }),
        error: metricValue(text, 'payments_stripe_requests_total', { ...op, outcome: 'error' }),
        no_answer: metricValue(text, 'payments_stripe_requests_total', { ...op, outcome: 'no_answer' }),
        timed: metricValue(text, 'payments_stripe_request_duration_seconds_count', op),
      };
    };
    const create = () => postJson(`${svc.url}/payment-intent`, { amount: 1000, currency: 'usd' });
    const before = await stripeCalls();
    // STRIPE_MAX_NETWORK_RETRIES defaults to 2: three requests, each answered 500.
    await svc.faults({ error_rate: 1, match: { path_prefix: '/v1/payment_intents' } });
    expect((await create()).status).toBe(503);
    // Three requests whose connection is dropped without an answer.
    await svc.faults({ drop_rate: 1, match: { path_prefix: '/v1/payment_intents' } });
    expect((await create()).status).toBe(503);
    await svc.faults({});
    expect((await create()).status).toBe(200);
    const after = await stripeCalls();
    expect({
      ok: after.ok - before.ok,
      error: after.error - before.error,
      no_answer: after.no_answer - before.no_answer,
      timed: after.timed - before.timed,
    }).toEqual({ ok: 1, error: 3, no_answer: 3, timed: 7 });
  }, 20_000);

  // Lines logged through the request's logger carry its id as `reqId`; the request line had it only as `req.id`, so
  // filtering on reqId found a failed request's error but not its status and latency. And the request line of a
  // 503 for Stripe's outage was an error while the failure itself was logged as a warning: every request during an
  // outage of Stripe's added an error line.
  it("the request line carries the request id as reqId, and a 503 for Stripe's outage is a warning like the failure's own line", async () => {
    const from = svc.lines.length;
    await svc.faults({ error_rate: 1, match: { path_prefix: '/v1/payment_intents' } });
    try {
      const res = await postJson(
        `${svc.url}/payment-intent`,
        { amount: 1000, currency: 'usd' },
        { 'x-request-id': 'find-me-by-reqid-1' },
      );
      expect(res.status).toBe(503);
    } finally {
      await svc.faults({});
    }
    const mine = svc.lines
      .slice(from)
      .map((l) => JSON.parse(l) as { msg: string; level: number; reqId?: string })
      .filter((l) => l.reqId === 'find-me-by-reqid-1')
      .map((l) => [l.msg, l.level]);
    expect(mine).toEqual([
      // The SDK's three tries (STRIPE_MAX_NETWORK_RETRIES 2), each answered 500.
      ['stripe call', 30],
      ['stripe call', 30],
      ['stripe call', 30],
      ['upstream failure', 40],
      ['request completed', 40],
    ]);
  });

  // The services' own lines of a request (payment made, refund made or queued) carried the payment's and refund's
  // ids but not the request's, so they could not be found from a request id a client reported.
  it("the services log a request's payment and refunds with its request id", async () => {
    const from = svc.lines.length;
    const pi = await postJson(
      `${svc.url}/payment-intent`,
      { amount: 2000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true },
      { 'x-request-id': 'svc-lines-pay' },
    );
    expect(pi.status).toBe(200);
    const id = pi.json.paymentIntentId;
    const now = await postJson(
      `${svc.url}/refund`,
      { payment_intent_id: id, amount: 500 },
      { 'x-request-id': 'svc-lines-now' },
    );
    expect(now.status).toBe(200);
    const later = await postJson(
      `${svc.url}/refund-async`,
      { payment_intent_id: id, amount: 500 },
      { 'x-request-id': 'svc-lines-later' },
    );
    expect(later.status).toBe(202);
    const lines = () => svc.lines.slice(from).map((l) => JSON.parse(l) as { msg: string; reqId?: string });
    const of = (reqId: string) =>
      lines()
        .filter((l) => l.reqId === reqId)
        .map((l) => l.msg);
    expect(of('svc-lines-pay')).toEqual(['stripe call', 'payment intent created', 'request completed']);
    expect(of('svc-lines-now')).toEqual(['stripe call', 'refund made', 'request completed']);
    // The queued refund's: the request's lines, and the worker's as it makes the refund (which may come before the
    // request's last line).
    const queued = await eventually(
      async () => of('svc-lines-later'),
      (msgs) => msgs.includes('queued refund made'),
    );
    expect(queued.filter((m) => m === 'refund queued' || m === 'request completed')).toEqual([
      'refund queued',
      'request completed',
    ]);
    expect([...queued].sort()).toEqual([
      'queued refund made',
      'refund queued',
      'request completed',
      'stripe call',
    ]);
  });

  // Lines and figures were written on the response's 'finish', which never comes for a response whose client went
  // away first: a POST /payment-intent that made a payment at Stripe left no request line and no count at all.
  it('a request whose client went away before the answer is logged and counted once, as 499', async () => {
    const count = async () =>
      metricValue(await (await fetch(`${svc.url}/metrics`)).text(), 'payments_http_requests_total', {
        operation: 'createPaymentIntent',
        status: '499',
      });
    const before = await count();
    const from = svc.lines.length;
    await svc.faults({ latency_ms: 1000, match: { path_prefix: '/v1/payment_intents' } });
    try {
      const gaveUp = new AbortController();
      setTimeout(() => gaveUp.abort(), 200);
      const sent = fetch(`${svc.url}/payment-intent`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': 'client-gave-up-1' },
        body: JSON.stringify({ amount: 1000, currency: 'usd' }),
        signal: gaveUp.signal,
      });
      await expect(sent).rejects.toThrow(/abort/i);
      // The handler goes on (the payment intent is made at Stripe) after its client left.
      await eventually(
        async () => svc.lines.slice(from).some((l) => l.includes('"payment intent created"')),
        (made) => made,
      );
    } finally {
      await svc.faults({});
    }
    expect((await count()) - before).toBe(1);
    const lines = svc.lines
      .slice(from)
      .map((l) => JSON.parse(l) as { msg: string; reqId?: string; res?: { statusCode: number } })
      .filter((l) => l.msg === 'request completed' && l.reqId === 'client-gave-up-1');
    expect(lines.map((l) => l.res?.statusCode)).toEqual([499]);
  });

  // An event stored but failing to apply (Stripe unreachable when it is read again) was retried in the background
  // with nothing but a log line per try: no figure to alert on.
  it('show stored webhook events not yet applied, back to 0 once they are', async () => {
    const unapplied = async () =>
      metricValue(await (await fetch(`${svc.url}/metrics`)).text(), 'payments_webhook_events_unapplied');
    await eventually(unapplied, (n) => n === 0);
    const body = JSON.stringify({
      id: `evt_unapplied${Date.now()}`,
      object: 'event',
      type: 'payment_intent.succeeded',
      created: Math.floor(Date.now() / 1000),
      data: { object: { id: 'pi_unapplied1', object: 'payment_intent' } },
    });
    // Applying a payment intent event reads the intent from Stripe again, which fails now.
    await svc.faults({ error_rate: 1, match: { path_prefix: '/v1/payment_intents/pi_unapplied1' } });
    try {
      const res = await postSignedWebhook(svc.url, svc.deps.webhookSecret, body);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      await svc.deps.webhooks.idle();
      expect(await unapplied()).toBe(1);
    } finally {
      await svc.faults({});
    }
    // The retry sweep applies it (Stripe now answers that it has no such intent: nothing to apply, and done).
    expect(await eventually(unapplied, (n) => n === 0)).toBe(0);
  });

  it('can require an API key', async () => {
    const closed = await startTestService('sqlite', { METRICS_PUBLIC: 'false', API_AUTH: 'on' });
    try {
      expect((await fetch(`${closed.url}/metrics`)).status).toBe(401);
      const key = (
        await createKey(closed.deps.store.apiKeys, {
          owner: 'ops',
          kind: 'secret',
          scopes: ['payments:read'],
        })
      ).key;
      expect(
        (await fetch(`${closed.url}/metrics`, { headers: { authorization: `Bearer ${key}` } })).status,
      ).toBe(200);
      // A secret key of any scope, as the contract says; not a publishable one, which anyone can read in a shop's pages.
      const browser = (await createKey(closed.deps.store.apiKeys, { owner: 'ops', kind: 'publishable' })).key;
      expect(
        (await fetch(`${closed.url}/metrics`, { headers: { authorization: `Bearer ${browser}` } })).status,
      ).toBe(401);
      expect((await fetch(`${closed.url}/healthz`)).status).toBe(200);
    } finally {
      await closed.stop();
    }
  });
});

describe.skipIf(!(await postgresAvailable()))('metrics while PostgreSQL does not answer', () => {
  let proxy: TcpProxy;
  let svc: TestService;
  beforeAll(async () => {
    ({ proxy, svc } = await startTestServiceBehindProxy({ DATABASE_TIMEOUT_MS: '400' }));
  });
  afterAll(async () => {
    await proxy?.close();
    await svc?.stop();
  });

  it('reads its gauges from PostgreSQL while it answers, ages included', async () => {
    const pi = await postJson(`${svc.url}/payment-intent`, {
      amount: 1000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    // Queued for a worker this ROLE=all process runs in process: it is made at once.
    await postJson(`${svc.url}/refund-async`, { payment_intent_id: pi.json.paymentIntentId });
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(metrics).toContain('payments_store_up 1\n');
    expect(metrics).toMatch(/^payments_refunds_oldest_age_seconds\{status="processing"\} \d+$/m);
    expect(metrics).toMatch(/^payments_outbox_oldest_age_seconds \d+$/m);
  });

  // The handler counted every failure of a webhook as `unverified` / `rejected`, so a correctly signed event the
  // service could not store (the database away) read as a forged or malformed one: an alert on rejected webhooks
  // fired for a database outage, and none said that Stripe's events were not being stored.
  it('a signed webhook that cannot be stored counts as failed under its type, not as rejected', async () => {
    const body = JSON.stringify({
      id: `evt_storefail${Date.now()}`,
      object: 'event',
      type: 'refund.updated',
      created: Math.floor(Date.now() / 1000),
      data: { object: { id: 're_storefail1', object: 'refund', amount: 100, status: 'succeeded' } },
    });
    proxy.blackHole();
    try {
      const res = await postSignedWebhook(svc.url, svc.deps.webhookSecret, body);
      expect(res.status).toBe(503);
      await res.arrayBuffer();
    } finally {
      proxy.forward();
    }
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(
      metricValue(metrics, 'payments_webhook_events_total', { type: 'refund.updated', outcome: 'failed' }),
    ).toBe(1);
    expect(metricValue(metrics, 'payments_webhook_events_total', { outcome: 'rejected' })).toBe(0);
  });
});

describe('reconciliation', () => {
  let sandbox: Sandbox;
  let svc: TestService;
  let direct: Stripe;
  const secret = 'sk_test_reconcile123';
  beforeAll(async () => {
    // A sandbox that sends no webhooks: what happens in it behind the service's back stays unknown to the ledger.
    sandbox = await startSandbox({ secretKey: secret });
    const { port } = new URL(sandbox.url);
    direct = new Stripe(secret, { host: '127.0.0.1', port, protocol: 'http' });
    svc = await startTestService('sqlite', {
      STRIPE_SECRET_KEY: secret,
      STRIPE_API_BASE: sandbox.url,
      API_AUTH: 'off',
    });
  });
  afterAll(async () => {
    await svc?.stop();
    await sandbox?.close();
  });

  it('finds no drift when everything went through the service, then finds a refund made directly in Stripe', async () => {
    const pi = await postJson(`${svc.url}/payment-intent`, {
      amount: 8000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    const piId = pi.json.paymentIntentId as string;
    expect((await postJson(`${svc.url}/refund`, { payment_intent_id: piId, amount: 3000 })).status).toBe(200);
    const since = new Date(Date.now() - 60_000);
    const clean = await reconcile({ store: svc.deps.store, stripe: svc.deps.stripe, since });
    expect(clean.drifts).toEqual([]);
    expect(clean.checked).toMatchObject({
      payments: 1,
      stripePayments: 1,
      stripeRefunds: 1,
      ledgerRefunds: 1,
    });

    const sneaky = await direct.refunds.create({ payment_intent: piId, amount: 1500 });
    const phases = new Set<string>();
    const report = await reconcile({
      store: svc.deps.store,
      stripe: svc.deps.stripe,
      since,
      onProgress: (p) => phases.add(p.phase),
    });
    expect(report.drifts).toEqual([
      expect.objectContaining({ kind: 'refund_missing_in_ledger', id: sneaky.id }),
    ]);
    expect([...phases]).toEqual(['payments', 'stripe payments', 'stripe refunds', 'ledger refunds']);
  });

  // Reconcile only looked up the ledger's payments at Stripe: a payment Stripe had and the ledger lacked (its
  // webhooks lost, or the ledger write after Stripe's create failed) was never reported. One naming no owner was
  // said to be made outside the service, though with API_AUTH=off (as here) the service names none either.
  it('finds a payment made directly in Stripe that the ledger lacks', async () => {
    const since = new Date(Date.now() - 60_000);
    const sneaky = await direct.paymentIntents.create({
      amount: 4200,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
      confirm: true,
    });
    // One the service made (its owner in the metadata) whose ledger write failed: the drift says whose it is.
    const owned = await direct.paymentIntents.create({
      amount: 1700,
      currency: 'eur',
      payment_method: 'pm_card_visa',
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
      confirm: true,
      metadata: { [OWNER_METADATA_KEY]: 'shop-owner-7', order: 'o-1' },
    });
    expect(await svc.deps.store.payments.get(sneaky.id)).toBeNull();
    const report = await reconcile({ store: svc.deps.store, stripe: svc.deps.stripe, since });
    const missing = report.drifts.filter((d) => d.kind.startsWith('payment_'));
    expect(missing).toHaveLength(2);
    expect(missing).toEqual(
      expect.arrayContaining([
        {
          kind: 'payment_missing_in_ledger',
          id: sneaky.id,
          detail:
            'Stripe has a succeeded payment of 4200 usd that the ledger lacks; no owner (made outside the service, or by it with API_AUTH=off)',
        },
        {
          kind: 'payment_missing_in_ledger',
          id: owned.id,
          detail: 'Stripe has a succeeded payment of 1700 eur that the ledger lacks; owner shop-owner-7',
        },
      ]),
    );
  });

  it('`npm run reconcile` reports the drift and exits non-zero', async () => {
    const env = {
      ...process.env,
      DATABASE_URL: svc.deps.config.database.url,
      STRIPE_SECRET_KEY: secret,
      STRIPE_API_BASE: sandbox.url,
      NODE_ENV: 'test',
    };
    const result = await run(process.execPath, ['--import', 'tsx', 'scripts/reconcile.ts', '--since', '1h'], {
      cwd: root,
      env,
    }).then(
      (r) => ({ code: 0, out: r.stdout }),
      (e: { code: number; stdout: string }) => ({ code: e.code, out: e.stdout }),
    );
    expect(result.code).toBe(1);
    expect(result.out).toMatch(/DRIFT refund_missing_in_ledger re_\w+/);
  }, 60_000);

  // Exit code 1 says "drift"; a run that could not compare (Stripe unreachable) used to end the same way, with
  // an uncaught error's stack trace, so a cron job alerting on drift could not tell the two apart.
  it('`npm run reconcile` that cannot reach Stripe says so and exits 3, not 1 (drift)', async () => {
    const env = {
      ...process.env,
      DATABASE_URL: svc.deps.config.database.url,
      STRIPE_SECRET_KEY: secret,
      STRIPE_API_BASE: `http://127.0.0.1:${await freePort()}`,
      STRIPE_TIMEOUT_MS: '2000',
      NODE_ENV: 'test',
    };
    const result = await run(process.execPath, ['--import', 'tsx', 'scripts/reconcile.ts', '--since', '1h'], {
      cwd: root,
      env,
    }).then(
      (r) => ({ code: 0, out: r.stdout, err: r.stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({
        code: e.code,
        out: e.stdout,
        err: e.stderr,
      }),
    );
    expect(result.code).toBe(3);
    expect(result.out).not.toMatch(/DRIFT|no drift/);
    expect(result.err).toMatch(/^error: reconcile could not finish: .*connection to Stripe/m);
    expect(result.err).not.toMatch(/^\s+at /m);
    expect(result.err).not.toContain(secret);
  }, 60_000);
});
