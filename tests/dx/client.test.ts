/**
 * The typed client against the REAL service, started in process in embedded mode (SQLite temp file,
 * in-process queue and Stripe sandbox): pay, read back, refund half now, queue the rest and wait for
 * it with the helper, then check the ledger through GET /refund-status.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPaymentsClient,
  PaymentsApiError,
  RefundWaitTimeoutError,
  unwrap,
  withIdempotencyKey,
  type PaymentsClient,
} from '../../client/index.js';
import { createKey } from '../../src/auth/api-keys.js';
import { loadConfig } from '../../src/config/index.js';
import { startService, type RunningService } from '../../src/service.js';

let dir: string;
let service: RunningService;
let client: PaymentsClient;
let apiKey: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'payments-dx-client-'));
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: `sqlite:${path.join(dir, 'ledger.db')}`,
    LOG_LEVEL: 'silent',
    // Embedded mode leaves auth off by default; on, the client's Authorization header is really checked.
    API_AUTH: 'on',
  });
  service = await startService(config, pino({ level: 'silent' }));
  const { key } = await createKey(service.deps.store.apiKeys, { owner: 'dx-client', kind: 'secret' });
  apiKey = key;
  client = createPaymentsClient({ baseUrl: service.url, apiKey: key });
});

afterAll(async () => {
  await service?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function paidIntent(amount: number, idempotencyKey?: string): Promise<string> {
  const { data, error, response } = await client.POST('/payment-intent', {
    body: { amount, currency: 'sgd', payment_method: 'pm_card_visa', confirm: true },
    ...(idempotencyKey ? withIdempotencyKey(idempotencyKey) : {}),
  });
  expect(error).toBeUndefined();
  expect(response.status).toBe(200);
  expect(data).toMatchObject({ success: true, status: 'succeeded' });
  expect(data!.clientSecret).toMatch(/^pi_.+_secret_/);
  return data!.paymentIntentId;
}

describe('typed client against the running service', () => {
  it('pays, reads back, refunds half now, queues the rest and waits for it, and the ledger agrees', async () => {
    const pi = await paidIntent(10_000);

    const intent = await unwrap(
      client.GET('/payment-intent/{payment_intent_id}', { params: { path: { payment_intent_id: pi } } }),
    );
    expect(intent).toMatchObject({ id: pi, amount: 10_000, currency: 'sgd', status: 'succeeded' });
    expect(intent).not.toHaveProperty('clientSecret');

    const now = await unwrap(
      client.POST('/refund', {
        body: { payment_intent_id: pi, amount: 5_000, reason: 'requested_by_customer' },
        ...withIdempotencyKey(),
      }),
    );
    expect(now.success).toBe(true);
    expect(now.refund).toMatchObject({ amount: 5_000, payment_intent: pi });
    expect(now.refund.id).toMatch(/^re_/);
    expect(['pending', 'succeeded']).toContain(now.refund.status);
    expect(now.request_id).toBeTruthy();

    const requestId = `dx-client-${pi}`;
    const queued = await client.POST('/refund-async', {
      body: { payment_intent_id: pi, request_id: requestId },
    });
    expect(queued.response.status).toBe(202);
    expect(queued.data).toMatchObject({
      success: true,
      message: 'Refund request queued successfully',
      request_id: requestId,
    });

    const settled = await client.refundAndWait(requestId, { timeoutMs: 20_000, intervalMs: 100 });
    expect(settled).toMatchObject({
      success: true,
      request_id: requestId,
      status: 'succeeded',
      amount: 5_000,
      payment_intent_id: pi,
    });
    expect(settled.refund_id).toMatch(/^re_/);
    expect(settled.refund_id).not.toBe(now.refund.id);

    // The ledger answers for the synchronous refund too, by the request id it returned.
    const syncStatus = await client.refundAndWait(now.request_id!, { timeoutMs: 20_000, intervalMs: 100 });
    expect(syncStatus).toMatchObject({ status: 'succeeded', amount: 5_000, refund_id: now.refund.id });

    const after = await unwrap(
      client.GET('/payment-intent/{payment_intent_id}', { params: { path: { payment_intent_id: pi } } }),
    );
    expect(after.amount_refunded).toBe(10_000);

    // Nothing is left: the service refuses before Stripe is called, and the client surfaces the problem.
    const over = await client.POST('/refund', { body: { payment_intent_id: pi, amount: 1 } });
    expect(over.response.status).toBe(409);
    expect(over.error).toMatchObject({ status: 409, title: 'Conflict' });
  });

  it('refundAndWait given a body queues the refund itself and waits for the final state', async () => {
    const pi = await paidIntent(3_000);
    const done = await client.refundAndWait(
      { payment_intent_id: pi },
      { timeoutMs: 20_000, intervalMs: 100 },
    );
    expect(done).toMatchObject({ status: 'succeeded', amount: 3_000, payment_intent_id: pi });
    const ledger = await unwrap(
      client.GET('/refund-status/{request_id}', { params: { path: { request_id: done.request_id } } }),
    );
    expect(ledger).toMatchObject({ status: 'succeeded', amount: 3_000, refund_id: done.refund_id });
  });

  it('the same Idempotency-Key returns the first payment instead of charging again', async () => {
    const key = `dx-order-${Date.now()}`;
    const first = await paidIntent(1_234, key);
    const again = await paidIntent(1_234, key);
    expect(again).toBe(first);
  });

  it('helpers turn error answers into PaymentsApiError with the problem details', async () => {
    const missing = await client
      .refundAndWait('no-such-request', { timeoutMs: 5_000 })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(PaymentsApiError);
    expect((missing as PaymentsApiError).status).toBe(404);
    expect((missing as PaymentsApiError).problem).toMatchObject({ status: 404 });

    const anonymous = createPaymentsClient({ baseUrl: service.url });
    const denied = await unwrap(
      anonymous.GET('/payment-intent/{payment_intent_id}', {
        params: { path: { payment_intent_id: 'pi_x' } },
      }),
    ).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(PaymentsApiError);
    expect((denied as PaymentsApiError).status).toBe(401);
  });

  it('refundAndWait stops with RefundWaitTimeoutError when the refund is not final in time', async () => {
    const pi = await paidIntent(2_000);
    const { request_id } = await unwrap(client.POST('/refund-async', { body: { payment_intent_id: pi } }));
    const err = await client.refundAndWait(request_id, { timeoutMs: 0 }).catch((e: unknown) => e);
    // The worker may already be done by the first read; then the helper rightly returns instead.
    if (err instanceof RefundWaitTimeoutError) {
      expect(err.requestId).toBe(request_id);
      expect(err.last?.request_id).toBe(request_id);
    } else {
      expect(err).toMatchObject({ status: 'succeeded' });
    }
    await client.refundAndWait(request_id, { timeoutMs: 20_000, intervalMs: 100 });
  });

  it("client/README.md's example runs as written, and again (a second order, not a replay of the first)", async () => {
    const readme = readFileSync(new URL('../../client/README.md', import.meta.url), 'utf8');
    const snippet = /```ts\n([\s\S]*?)```/.exec(readme)![1]!;
    expect(snippet).toContain("'http://127.0.0.1:5000'");
    const previousKey = process.env.PAYMENTS_API_KEY;
    process.env.PAYMENTS_API_KEY = apiKey;
    const intents: string[] = [];
    try {
      // Someone trying it out runs it more than once against the same service.
      for (const attempt of [1, 2]) {
        // Next to client/ so that its import resolves as the README writes it; pointed at this test's service.
        const file = new URL(`../../readme-example-${process.pid}-${attempt}.ts`, import.meta.url);
        writeFileSync(
          file,
          `${snippet.replace("'http://127.0.0.1:5000'", JSON.stringify(service.url))}\nexport { data, intent, refund };\n`,
        );
        try {
          const run = (await import(/* @vite-ignore */ file.href)) as {
            intent: { id: string; amount: number };
            refund: { status: string; payment_intent_id: string; amount: number | null };
          };
          expect(run.refund).toMatchObject({ status: 'succeeded', payment_intent_id: run.intent.id });
          expect(run.refund.amount).toBe(run.intent.amount);
          intents.push(run.intent.id);
        } finally {
          rmSync(file, { force: true });
        }
      }
      expect(new Set(intents).size).toBe(2);
    } finally {
      if (previousKey === undefined) delete process.env.PAYMENTS_API_KEY;
      else process.env.PAYMENTS_API_KEY = previousKey;
    }
  });

  it('client/example.ts (npm run client:example) runs against the service and says what it did', async () => {
    const root = fileURLToPath(new URL('../..', import.meta.url));
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'client/example.ts'], {
      cwd: root,
      env: { ...process.env, PAYMENTS_URL: service.url, PAYMENTS_API_KEY: apiKey },
      timeout: 60_000,
    });
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^payment intent pi_\S+ succeeded$/);
    expect(lines[1]).toMatch(/^refunded now 1000 (pending|succeeded)$/);
    expect(lines[2]).toMatch(/^queued refund \S+ succeeded 1000$/);
    expect(stdout).not.toContain(apiKey);
  });
});
