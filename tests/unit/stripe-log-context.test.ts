import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStripeClient, logContextOptions } from '../../src/stripe/client.js';
import { captureLogger } from '../helpers/log-capture.js';

/** A stand-in for Stripe that keeps the headers of every request: the first `failures` are answered 500. */
function startRecordingStripe(): Promise<{
  url: URL;
  seen: IncomingHttpHeaders[];
  failFirst(n: number): void;
  close(): Promise<void>;
}> {
  const seen: IncomingHttpHeaders[] = [];
  let failures = 0;
  const server: Server = createServer((req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => {
      const failing = failures > 0;
      if (failing) failures--;
      res.writeHead(failing ? 500 : 200, {
        'content-type': 'application/json',
        'request-id': `req_seen${seen.length}`,
      });
      res.end(
        JSON.stringify(
          failing
            ? { error: { type: 'api_error', message: 'boom' } }
            : { id: 'pi_123', object: 'payment_intent', amount: 100, currency: 'usd' },
        ),
      );
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: new URL(`http://127.0.0.1:${port}`),
        seen,
        failFirst: (n) => (failures = n),
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}

describe('a Stripe call made with logContextOptions', () => {
  let stripeServer: Awaited<ReturnType<typeof startRecordingStripe>>;
  beforeAll(async () => {
    stripeServer = await startRecordingStripe();
  });
  afterAll(async () => {
    await stripeServer?.close();
  });

  it("puts the ids on every attempt's 'stripe call' line, and never sends them to Stripe", async () => {
    const { logger, lines } = captureLogger('info');
    const stripe = createStripeClient(
      { secretKey: 'sk_test_logctx', apiBase: stripeServer.url, timeoutMs: 5_000, maxNetworkRetries: 1 },
      logger,
    );
    stripeServer.failFirst(1);
    const from = stripeServer.seen.length;
    const pi = await stripe.paymentIntents.retrieve(
      'pi_123',
      {},
      logContextOptions({ reqId: 'req-ctx-1', request_id: 'refund-ctx-1', payment_intent: 'pi_123' }),
    );
    expect(pi.id).toBe('pi_123');
    const calls = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === 'stripe call');
    expect(calls.map((l) => [l.status, l.reqId, l.request_id, l.payment_intent, l.stripeRequestId])).toEqual([
      [500, 'req-ctx-1', 'refund-ctx-1', 'pi_123', `req_seen${from + 1}`],
      [200, 'req-ctx-1', 'refund-ctx-1', 'pi_123', `req_seen${from + 2}`],
    ]);
    const sent = stripeServer.seen.slice(from);
    expect(sent).toHaveLength(2);
    for (const headers of sent) {
      expect(Object.keys(headers).filter((h) => h.includes('log'))).toEqual([]);
      expect(JSON.stringify(headers)).not.toContain('refund-ctx-1');
    }
  });
});
