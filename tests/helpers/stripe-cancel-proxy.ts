/**
 * An HTTP front for a Stripe sandbox that reports chosen refunds as `canceled`, as Stripe does for a refund that
 * waited for customer action and was canceled. The sandbox refunds only cards, which Stripe never cancels, so it
 * cannot get there itself. Every request goes to the sandbox as it came; only the refund objects named by
 * cancel() (on their own or in a list) come back with status `canceled` and, as Stripe reports a canceled refund,
 * `failure_reason: merchant_request`. The service's SDK talks to it over HTTP
 * like to any Stripe (STRIPE_API_BASE).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StripeCancelProxy {
  /** e.g. http://127.0.0.1:54321 */
  readonly url: string;
  /** The sandbox requests go to (set once it is known; until then requests are answered 502). */
  target: string | null;
  /** From now on, refund `id` reads `canceled`. */
  cancel(id: string): void;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'content-encoding',
  'host',
]);

async function bodyOf(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startStripeCancelProxy(): Promise<StripeCancelProxy> {
  const canceled = new Set<string>();
  const proxy = {
    url: '',
    target: null as string | null,
    cancel: (id: string) => void canceled.add(id),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };

  function rewrite(value: unknown): void {
    if (typeof value !== 'object' || value === null) return;
    const o = value as {
      object?: unknown;
      id?: unknown;
      status?: unknown;
      failure_reason?: unknown;
      data?: unknown;
    };
    if (o.object === 'refund' && typeof o.id === 'string' && canceled.has(o.id)) {
      o.status = 'canceled';
      // As Stripe's canceled refund reads (docs.stripe.com/api/refunds/cancel): canceled at the merchant's request.
      o.failure_reason = 'merchant_request';
    }
    if (o.object === 'list' && Array.isArray(o.data)) o.data.forEach(rewrite);
  }

  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await bodyOf(req);
      if (proxy.target === null) {
        res.writeHead(502).end();
        return;
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers))
        if (!HOP_BY_HOP.has(k) && typeof v === 'string') headers[k] = v;
      const answer = await fetch(`${proxy.target}${req.url ?? '/'}`, {
        method: req.method ?? 'GET',
        headers,
        ...(body.length > 0 && { body }),
      });
      let text = await answer.text();
      if ((answer.headers.get('content-type') ?? '').includes('json') && canceled.size > 0) {
        try {
          const json: unknown = JSON.parse(text);
          rewrite(json);
          text = JSON.stringify(json);
        } catch {
          // not JSON after all: passed on as it came
        }
      }
      const out: Record<string, string> = {};
      answer.headers.forEach((v, k) => {
        if (!HOP_BY_HOP.has(k)) out[k] = v;
      });
      res.writeHead(answer.status, out).end(text);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}
