/**
 * Answers given at the connection level.
 *
 * A client that sends its headers and then dribbles (or stops sending) the body it announced is the
 * client's fault. The request timeout used to answer it like a hung upstream: 503 "Retry later", logged at
 * error level, the connection kept alive while the rest of the body was still awaited. It must be a 408
 * problem+json that closes the connection, so the socket is not held for a body that is not coming.
 * A handler that is itself slow still answers 503 (README: "Requests taking longer answer 503").
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { startTestService, type TestService } from '../helpers/service.js';

let svc: TestService;
let key: string;

beforeAll(async () => {
  svc = await startTestService('sqlite', {
    API_AUTH: 'on',
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'info',
    REQUEST_TIMEOUT_MS: '1000',
  });
  key = (await createKey(svc.deps.store.apiKeys, { owner: 'slow', kind: 'secret' })).key;
});
afterAll(async () => {
  await svc?.stop();
});

/** Writes `chunks` `gapMs` apart; resolves with what came back and when the server closed the socket. */
function dribble(
  chunks: string[],
  gapMs: number,
  giveUpMs = 6000,
): Promise<{ answer: string; closedAfterMs: number | null }> {
  const { port } = new URL(svc.url);
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(Number(port), '127.0.0.1');
    let answer = '';
    let i = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ answer, closedAfterMs: null });
    }, giveUpMs);
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ answer, closedAfterMs: Date.now() - started });
    });
    socket.on('error', () => undefined);
    const next = () => {
      if (socket.destroyed || i >= chunks.length) return;
      socket.write(chunks[i++]!);
      setTimeout(next, gapMs);
    };
    socket.on('connect', next);
  });
}

const body = JSON.stringify({ amount: 1000, currency: 'usd' });
const head = (length = body.length) =>
  `POST /payment-intent HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\n` +
  `Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;

describe('request bodies that do not arrive in time', () => {
  // The chunks are made in the test, once the key exists: made when the tests were collected, they sent
  // `Bearer undefined`, and a request without a valid key is now answered 401 before its body is read.
  it.each([
    ['a body that stops halfway', () => [head(), body.slice(0, 5)], 0],
    ['a body sent one byte every 300 ms', () => [head(), ...body.split('')], 300],
  ] as const)('%s → 408 problem+json, and the connection is closed', async (_name, chunks, gap) => {
    const { answer, closedAfterMs } = await dribble(chunks(), gap);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer.toLowerCase()).toContain('content-type: application/problem+json');
    expect(answer).toContain('"code":"request_timeout"');
    expect(answer.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    expect(closedAfterMs).not.toBeNull();
    expect(closedAfterMs!).toBeLessThan(3000);
  });

  it('headers that never finish → 408 problem+json (as Node answers by itself), not "400 malformed"', async () => {
    // Node checks request deadlines every 30 s, so this can take up to REQUEST_TIMEOUT_MS + 30 s.
    const slow = head().match(/[^]{1,2}/g)!;
    const { answer, closedAfterMs } = await dribble(slow, 400, 40_000);
    expect(closedAfterMs).not.toBeNull();
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer.toLowerCase()).toContain('content-type: application/problem+json');
    expect(answer).toContain('"status":408');
    // Answered on the connection before Express, with what every other answer carries (the request's headers
    // were never read, so the id is a new one): an X-Request-Id the body repeats, and the security headers.
    const [headBlock = '', problem = ''] = answer.split('\r\n\r\n');
    const requestId = /^x-request-id: (.+)$/im.exec(headBlock)?.[1];
    expect(requestId).toBeDefined();
    expect((JSON.parse(problem) as { request_id?: string }).request_id).toBe(requestId);
    expect(headBlock).toMatch(/^cache-control: no-store$/im);
    expect(headBlock).toMatch(/^x-content-type-options: nosniff$/im);
    expect(headBlock).toMatch(/^content-security-policy: /im);
    expect(headBlock).toMatch(/^strict-transport-security: /im);
    expect(headBlock).toMatch(/^x-frame-options: DENY$/im);
  }, 45_000);

  it('is not logged as a server error', async () => {
    const before = svc.lines.length;
    await dribble([head(), body.slice(0, 5)], 0);
    const lines = svc.lines.slice(before).filter((l) => l.includes('"request completed"'));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).not.toMatch(/"level":50/);
  });

  it('a complete request whose handler is slow (Stripe answering late) still gets 503 with Retry-After', async () => {
    await svc.faults({ latency_ms: 1500 });
    try {
      const res = await fetch(`${svc.url}/payment-intent`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${key}`,
          'content-type': 'application/json',
          'idempotency-key': 'slow-1',
        },
        body,
      });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('1');
      const problem = (await res.json()) as { code: string; detail: string };
      expect(problem.code).toBe('timeout');
      expect(problem.detail).toMatch(/same Idempotency-Key, within 24 hours/);
    } finally {
      await svc.faults({});
    }
  });

  it('a timed-out POST without an Idempotency-Key is not told a retry is safe: it still completes at Stripe', async () => {
    const marker = `no-key-${Date.now()}`;
    await svc.faults({ latency_ms: 1500 });
    let problem: { code: string; detail: string };
    try {
      const res = await fetch(`${svc.url}/payment-intent`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ amount: 1000, currency: 'usd', metadata: { marker } }),
      });
      expect(res.status).toBe(503);
      // Nothing that retrying HTTP clients would follow by themselves.
      expect(res.headers.get('retry-after')).toBeNull();
      problem = (await res.json()) as typeof problem;
    } finally {
      await svc.faults({});
    }
    expect(problem.code).toBe('timeout');
    expect(problem).not.toHaveProperty('retry_after');
    expect(problem.detail).toMatch(/may still complete/);
    expect(problem.detail).toMatch(/no Idempotency-Key, so a retry may do it twice/);
    expect(problem.detail).not.toMatch(/safe to retry|Retry later with/);
    // What the answer warns of: the intent is made all the same once Stripe answers.
    await expect
      .poll(
        async () => {
          const list = await svc.deps.stripe.paymentIntents.list({ limit: 20 });
          return list.data.filter((pi) => pi.metadata['marker'] === marker).length;
        },
        { timeout: 5000, interval: 200 },
      )
      .toBe(1);
  });

  it('a complete request is still answered normally afterwards', async () => {
    const res = await fetch(`${svc.url}/payment-intent`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBe(200);
  });
});

describe('an Expect header the server does not support', () => {
  it('→ 417 problem+json (Node answered an empty 417 by itself)', async () => {
    const { answer } = await dribble(
      [
        `POST /payment-intent HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 200-ok\r\n\r\n`,
      ],
      0,
      3000,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 417 /);
    expect(answer.toLowerCase()).toContain('content-type: application/problem+json');
    expect(answer).toContain('"status":417');
  });

  it('Expect: 100-continue still works', async () => {
    const { answer } = await dribble(
      [
        `POST /payment-intent HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${key}\r\nConnection: close\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`,
        body,
      ],
      200,
      5000,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 100 Continue/);
    expect(answer).toContain('HTTP/1.1 200 OK');
  });
});
