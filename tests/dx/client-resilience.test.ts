/**
 * The typed client when the network or the service misbehaves, against the REAL service in embedded mode
 * (SQLite temp file, in-process queue, Stripe sandbox). Faults are made between the client and the service
 * with the client's own `fetch` option (an answer lost after the service acted on it, a 503 from a proxy) or
 * with a TCP server that never answers: what a caller sees, and that no refund is made twice.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPaymentsClient,
  PaymentsApiError,
  RefundWaitTimeoutError,
  unwrap,
  type PaymentsClient,
} from '../../client/index.js';
import { createKey } from '../../src/auth/api-keys.js';
import { loadConfig } from '../../src/config/index.js';
import { startService, type RunningService } from '../../src/service.js';

let dir: string;
let service: RunningService;
let apiKey: string;
let client: PaymentsClient;
let silent: Server;
let silentUrl: string;
const silentSockets = new Set<Socket>();

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'payments-dx-client-faults-'));
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: `sqlite:${path.join(dir, 'ledger.db')}`,
    LOG_LEVEL: 'silent',
    API_AUTH: 'on',
  });
  service = await startService(config, pino({ level: 'silent' }));
  ({ key: apiKey } = await createKey(service.deps.store.apiKeys, { owner: 'dx-faults', kind: 'secret' }));
  client = createPaymentsClient({ baseUrl: service.url, apiKey });
  // Accepts connections and never answers, as a hung proxy or a stalled service does.
  silent = createServer((socket) => {
    silentSockets.add(socket);
    socket.on('close', () => silentSockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const address = silent.address();
  silentUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(async () => {
  for (const socket of silentSockets) socket.destroy();
  await new Promise((resolve) => silent?.close(resolve));
  await service?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function paidIntent(amount: number): Promise<string> {
  const intent = await unwrap(
    client.POST('/payment-intent', {
      body: { amount, currency: 'sgd', payment_method: 'pm_card_visa', confirm: true },
    }),
  );
  return intent.paymentIntentId;
}

async function refunded(pi: string): Promise<number> {
  const intent = await unwrap(
    client.GET('/payment-intent/{payment_intent_id}', { params: { path: { payment_intent_id: pi } } }),
  );
  return intent.amount_refunded ?? 0;
}

function problem503(): Response {
  return new Response(
    JSON.stringify({
      type: 'about:blank',
      title: 'Service Unavailable',
      status: 503,
      detail: 'The service is at its limit of requests in progress. Retry shortly.',
      request_id: 'proxy-503',
      code: 'overloaded',
      retry_after: 0,
    }),
    { status: 503, headers: { 'content-type': 'application/problem+json', 'retry-after': '0' } },
  );
}

describe('refundAndWait when the refund request meets a fault', () => {
  it('an answer lost after the service queued the refund is retried without refunding twice', async () => {
    const pi = await paidIntent(3_000);
    const posts: Request[] = [];
    const lossy = createPaymentsClient({
      baseUrl: service.url,
      apiKey,
      fetch: async (request) => {
        if (request.method !== 'POST') return fetch(request);
        posts.push(request.clone());
        const response = await fetch(request);
        // The service has acted; its answer never reaches the caller.
        if (posts.length === 1) throw new TypeError('fetch failed');
        return response;
      },
    });
    const done = await lossy.refundAndWait(
      { payment_intent_id: pi, amount: 1_000 },
      { timeoutMs: 20_000, intervalMs: 50 },
    );
    expect(done).toMatchObject({ status: 'succeeded', amount: 1_000, payment_intent_id: pi });
    expect(posts).toHaveLength(2);
    // Both tries were the same request: same body (a request_id the client chose), so the second was a replay.
    const [first, second] = await Promise.all(posts.map((p) => p.json() as Promise<{ request_id?: string }>));
    expect(first!.request_id).toBeTruthy();
    expect(second).toEqual(first);
    expect(done.request_id).toBe(first!.request_id);
    expect(await refunded(pi)).toBe(1_000);
  });

  it("a 503 with Retry-After before the service saw the request is retried with the caller's Idempotency-Key", async () => {
    const pi = await paidIntent(2_000);
    const keys: (string | null)[] = [];
    const flaky = createPaymentsClient({
      baseUrl: service.url,
      apiKey,
      fetch: async (request) => {
        if (request.method !== 'POST') return fetch(request);
        keys.push(request.headers.get('idempotency-key'));
        return keys.length === 1 ? problem503() : fetch(request);
      },
    });
    const done = await flaky.refundAndWait(
      { payment_intent_id: pi, amount: 500 },
      { timeoutMs: 20_000, intervalMs: 50, idempotencyKey: 'dx-faults-order-7' },
    );
    expect(done).toMatchObject({ status: 'succeeded', amount: 500 });
    expect(keys).toEqual(['dx-faults-order-7', 'dx-faults-order-7']);
    expect(await refunded(pi)).toBe(500);
  });

  it('a definite refusal is not retried and reaches the caller as PaymentsApiError', async () => {
    const pi = await paidIntent(1_000);
    let posts = 0;
    const counting = createPaymentsClient({
      baseUrl: service.url,
      apiKey,
      fetch: (request) => {
        if (request.method === 'POST') posts += 1;
        return fetch(request);
      },
    });
    const err = await counting
      .refundAndWait({ payment_intent_id: pi, amount: 5_000 }, { timeoutMs: 10_000, intervalMs: 50 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PaymentsApiError);
    expect((err as PaymentsApiError).status).toBe(409);
    expect(posts).toBe(1);
    expect(await refunded(pi)).toBe(0);
  });
});

describe('refundAndWait keeps to its timeoutMs', () => {
  it('gives up with RefundWaitTimeoutError when the service never answers a status read', async () => {
    const stalled = createPaymentsClient({ baseUrl: silentUrl, apiKey });
    const err = await stalled
      .refundAndWait('unique-id-123', { timeoutMs: 300, intervalMs: 50 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefundWaitTimeoutError);
    expect((err as RefundWaitTimeoutError).requestId).toBe('unique-id-123');
  }, 10_000);

  it('gives up, naming the request id to check, when the refund request itself is never answered', async () => {
    const stalled = createPaymentsClient({ baseUrl: silentUrl, apiKey });
    const err = await stalled
      .refundAndWait({ payment_intent_id: 'pi_never_answered' }, { timeoutMs: 300, intervalMs: 50 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefundWaitTimeoutError);
    expect((err as RefundWaitTimeoutError).requestId).toMatch(/^[A-Za-z0-9._:-]+$/);
    expect((err as RefundWaitTimeoutError).last).toBeUndefined();
  }, 10_000);

  it('an abort by the caller is the abort, not a timeout', async () => {
    const stalled = createPaymentsClient({ baseUrl: silentUrl, apiKey });
    const controller = new AbortController();
    const pending = stalled
      .refundAndWait('unique-id-123', { timeoutMs: 20_000, signal: controller.signal })
      .catch((e: unknown) => e);
    controller.abort(new Error('caller gave up'));
    expect(await pending).toMatchObject({ message: 'caller gave up' });
  }, 10_000);

  it('honours Retry-After on a 429 instead of reading again every intervalMs', async () => {
    let reads = 0;
    const limited = createPaymentsClient({
      baseUrl: service.url,
      apiKey,
      fetch: async () => {
        reads += 1;
        return new Response(
          JSON.stringify({ type: 'about:blank', title: 'Too Many Requests', status: 429, retry_after: 30 }),
          { status: 429, headers: { 'content-type': 'application/problem+json', 'retry-after': '30' } },
        );
      },
    });
    const err = await limited
      .refundAndWait('unique-id-123', { timeoutMs: 1_000, intervalMs: 10 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefundWaitTimeoutError);
    // Told to come back in 30 s, a wait of 1 s reads once and does not hammer the limited service.
    expect(reads).toBe(1);
  }, 10_000);
});

describe('PaymentsApiError', () => {
  it('carries the request id and the code of the problem, and names the request id in its message', async () => {
    const err = await unwrap(
      client.GET('/refund-status/{request_id}', { params: { path: { request_id: 'no-such-refund' } } }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PaymentsApiError);
    const e = err as PaymentsApiError;
    expect(e.status).toBe(404);
    expect(e.requestId).toBeTruthy();
    expect(e.requestId).toBe(e.problem?.request_id);
    expect(e.message).toContain(e.requestId!);
  });

  it("takes the request id and Retry-After from the headers when a proxy's answer is no problem", async () => {
    const proxied = createPaymentsClient({
      baseUrl: service.url,
      apiKey,
      fetch: async () =>
        new Response('<html>Bad gateway</html>', {
          status: 503,
          headers: { 'content-type': 'text/html', 'x-request-id': 'edge-42', 'retry-after': '7' },
        }),
    });
    const err = await unwrap(proxied.GET('/healthz')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PaymentsApiError);
    expect(err).toMatchObject({ status: 503, requestId: 'edge-42', retryAfter: 7, problem: undefined });
  });

  it('never holds the API key, in its message or anywhere a logger would print', async () => {
    const err = await unwrap(
      client.GET('/refund-status/{request_id}', { params: { path: { request_id: 'no-such-refund' } } }),
    ).catch((e: unknown) => e);
    const { inspect } = await import('node:util');
    expect(inspect(err, { depth: 10, showHidden: true })).not.toContain(apiKey);
    expect(JSON.stringify(err)).not.toContain(apiKey);
  });
});
