/**
 * Overload: Stripe slow while many clients call.
 *
 * Every request used to be admitted, however many were already waiting on Stripe, and a request the timeout had
 * answered (503) kept its Stripe call running: clients retrying after their 503 piled up more calls than there
 * were clients. With 3,500 clients against a Stripe taking 6 s (REQUEST_TIMEOUT_MS=5000, STRIPE_TIMEOUT_MS=4000)
 * the built service, run as the image runs it (--max-old-space-size=128), held ~7,000 sockets to Stripe and died
 * of a heap out of memory within a minute, losing everything in flight. Now at most MAX_CONCURRENT_REQUESTS
 * requests are at work at once, counting a request's work until it ends even after its answer was sent; the rest
 * are answered 503 problem+json `overloaded` with Retry-After at once, and the probes are never refused.
 *
 * Webhook bodies (up to 512 kB each, read before the signature can be checked) are held in memory until they are
 * complete: 900 connections from anyone, each sending 448 kB of a webhook and then nothing, held 500 MB of RSS for
 * the 30 s of the request timeout, whatever the heap limit. At most MAX_WEBHOOKS_IN_PROGRESS are read at once, and
 * at most MAX_WEBHOOKS_PER_CLIENT of them from one client address, so that one client cannot keep Stripe out.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_WEBHOOKS_IN_PROGRESS, MAX_WEBHOOKS_PER_CLIENT } from '../../src/http/app.js';
import { postSignedWebhook } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

const CAP = 20;
let svc: TestService;
let stripeInFlight = 0;
let stripeMaxInFlight = 0;

beforeAll(async () => {
  svc = await startTestService('sqlite', {
    RATE_LIMIT_PER_MINUTE: '0',
    REQUEST_TIMEOUT_MS: '1000',
    STRIPE_TIMEOUT_MS: '10000',
    STRIPE_MAX_NETWORK_RETRIES: '0',
    MAX_CONCURRENT_REQUESTS: String(CAP),
  });
  svc.deps.stripe.on('request', () => {
    stripeInFlight++;
    stripeMaxInFlight = Math.max(stripeMaxInFlight, stripeInFlight);
  });
  svc.deps.stripe.on('response', () => stripeInFlight--);
});
afterAll(async () => {
  await svc?.faults({});
  await svc?.stop();
});

interface Answer {
  status: number;
  contentType: string;
  retryAfter: string | null;
  body: { code?: string; status?: number };
}

async function createIntent(): Promise<Answer> {
  const res = await fetch(`${svc.url}/payment-intent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ amount: 1000, currency: 'usd' }),
  });
  return {
    status: res.status,
    contentType: res.headers.get('content-type') ?? '',
    retryAfter: res.headers.get('retry-after'),
    body: (await res.json()) as Answer['body'],
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('many clients while Stripe is slow', () => {
  it('admits at most MAX_CONCURRENT_REQUESTS, counting work the timeout answered, and refuses the rest with 503 overloaded', async () => {
    await svc.faults({ latency_ms: 3000, match: { path_prefix: '/v1/payment_intents' } });

    // Two waves: the second arrives after the first was answered by the 1 s timeout, while its Stripe calls
    // (3 s) are still running.
    const first = Array.from({ length: 3 * CAP }, () => createIntent());
    await sleep(1500);
    const health = await fetch(`${svc.url}/healthz`);
    // Routing ignores a trailing slash: a probe set up as /healthz/ is the same probe, and is not refused.
    const probes = await Promise.all(['/healthz/', '/metrics/'].map((p) => fetch(`${svc.url}${p}`)));
    const second = Array.from({ length: 3 * CAP }, () => createIntent());
    const answers = await Promise.all([...first, ...second]);

    expect(health.status).toBe(200);
    expect(probes.map((p) => p.status)).toEqual([200, 200]);
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.contentType).toMatch(/^application\/problem\+json/);
      // An overloaded request was not run, so a retry is safe; a timed-out one without an Idempotency-Key may
      // still make its intent, so it gets no Retry-After (connection-edges.test.ts).
      expect(a.retryAfter).toBe(a.body.code === 'overloaded' ? '1' : null);
    }
    const codes = answers.map((a) => a.body.code);
    expect(codes.filter((c) => c === 'timeout')).toHaveLength(CAP);
    expect(codes.filter((c) => c === 'overloaded')).toHaveLength(answers.length - CAP);
    expect(stripeMaxInFlight).toBeLessThanOrEqual(CAP);

    // Once Stripe's answers are in, the work is over and requests are admitted again (soon: on a busy machine the
    // work's last steps after Stripe's answer take a moment; a slot that never came back would fail here).
    await svc.faults({});
    await eventually(
      async () => stripeInFlight,
      (n) => n === 0,
      10_000,
    );
    expect(stripeInFlight).toBe(0);
    const after = await eventually(
      () => Promise.all(Array.from({ length: CAP }, () => createIntent())),
      (answers) => answers.every((a) => a.status === 200),
      10_000,
    );
    expect(after.map((a) => a.status)).toEqual(Array.from({ length: CAP }, () => 200));
  });
});

/**
 * Sends the headers and `sent` bytes of a webhook announcing `length` bytes, from client address `from` (through
 * a proxy, TRUST_PROXY=true); resolves with the first answer line.
 */
function partialWebhook(
  to: TestService,
  length: number,
  sent: number,
  from = '198.51.100.1',
): { first: Promise<string>; close(): void } {
  const { port } = new URL(to.url);
  const socket = connect(Number(port), '127.0.0.1');
  socket.on('error', () => undefined);
  const first = new Promise<string>((resolve) => {
    let text = '';
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      if (text.includes('\r\n\r\n')) resolve(text);
    });
    socket.on('close', () => resolve(text));
  });
  socket.on('connect', () => {
    socket.write(
      `POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: ${from}\r\nContent-Type: application/json\r\nStripe-Signature: t=1,v1=00\r\nContent-Length: ${length}\r\n\r\n`,
    );
    socket.write(Buffer.alloc(sent, 0x61));
  });
  return { first, close: () => socket.destroy() };
}

/**
 * The first answer of each request (or 'still reading'), once `refused` of them have been answered 503 and a moment
 * more has passed for any further refusal: refusals come at once, so a fixed wait (700 ms) was too short on a busy
 * machine, and one long enough to be safe would reach the request timeout.
 */
async function answersOnceRefused(held: { first: Promise<string> }[], refused: number): Promise<string[]> {
  const answers: (string | undefined)[] = held.map(() => undefined);
  held.forEach((h, i) => void h.first.then((a) => (answers[i] = a)));
  // Gives up after 10 s: the counts the caller checks then say what came instead.
  await eventually(
    async () => answers.filter((a) => a?.startsWith('HTTP/1.1 503')).length,
    (n) => n >= refused,
    10_000,
  );
  await sleep(300);
  return answers.map((a) => a ?? 'still reading');
}

describe('many unfinished webhook bodies', () => {
  let hooks: TestService;
  beforeAll(async () => {
    hooks = await startTestService('sqlite', {
      RATE_LIMIT_PER_MINUTE: '0',
      // Long enough that no held body is answered 408 while the refusals are counted.
      REQUEST_TIMEOUT_MS: '20000',
      TRUST_PROXY: 'true',
    });
  });
  afterAll(async () => {
    await hooks?.stop();
  });

  it('reads at most MAX_WEBHOOKS_IN_PROGRESS at once and refuses the others with 503 overloaded at once', async () => {
    const extra = 20;
    // From as many clients: one client has only its share (below).
    const held = Array.from({ length: MAX_WEBHOOKS_IN_PROGRESS + extra }, (_, i) =>
      partialWebhook(hooks, 512 * 1024, 256 * 1024, `10.0.0.${i}`),
    );
    try {
      const answers = await answersOnceRefused(held, extra);
      const refused = answers.filter((a) => a.startsWith('HTTP/1.1 503'));
      expect(refused).toHaveLength(extra);
      for (const a of refused) {
        expect(a).toMatch(/content-type: application\/problem\+json/i);
        expect(a).toMatch(/retry-after: 1/i);
      }
      expect(answers.filter((a) => a === 'still reading')).toHaveLength(MAX_WEBHOOKS_IN_PROGRESS);
      // Other requests still get in.
      expect((await fetch(`${hooks.url}/payment-intent/pi_missing`)).status).toBe(404);
    } finally {
      for (const h of held) h.close();
    }
  });

  it("one client sending slowly cannot take every place: Stripe's deliveries still get in", async () => {
    const attacker = Array.from({ length: MAX_WEBHOOKS_IN_PROGRESS }, () =>
      partialWebhook(hooks, 512 * 1024, 1, '203.0.113.66'),
    );
    try {
      const answers = await answersOnceRefused(attacker, MAX_WEBHOOKS_IN_PROGRESS - MAX_WEBHOOKS_PER_CLIENT);
      expect(answers.filter((a) => a === 'still reading')).toHaveLength(MAX_WEBHOOKS_PER_CLIENT);
      expect(answers.filter((a) => a.startsWith('HTTP/1.1 503'))).toHaveLength(
        MAX_WEBHOOKS_IN_PROGRESS - MAX_WEBHOOKS_PER_CLIENT,
      );
      const event = JSON.stringify({
        id: 'evt_slow_neighbour',
        type: 'customer.created',
        data: { object: { id: 'cus_1' } },
      });
      const delivered = await postSignedWebhook(hooks.url, hooks.deps.webhookSecret, event);
      expect(delivered.status).toBe(200);
    } finally {
      for (const h of attacker) h.close();
    }
  });
});
