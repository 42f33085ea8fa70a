import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import Stripe from 'stripe';

export interface Served {
  url: string;
  close(): Promise<void>;
}

export async function serve(app: Express): Promise<Served> {
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** What a browser sends from a page of `origin` before a POST with a key and a JSON body to `url`. */
export function preflight(url: string, origin: string): Promise<Response> {
  return fetch(url, {
    method: 'OPTIONS',
    headers: {
      origin,
      'access-control-request-method': 'POST',
      'access-control-request-headers': 'authorization,content-type',
    },
  });
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON; callers assert on status
  }
  return { status: res.status, headers: res.headers, text, json: json as Record<string, unknown> };
}

export async function getJson(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, text, json: json as Record<string, unknown> };
}

/**
 * A payment intent for `amount`, confirmed with the sandbox's test card through the service at `serviceUrl`
 * (so its ledger knows it): its id. Throws unless the intent succeeded.
 */
export async function paidIntent(
  serviceUrl: string,
  amount: number,
  opts: { currency?: string; headers?: Record<string, string>; paymentMethod?: string } = {},
): Promise<string> {
  const res = await postJson(
    `${serviceUrl}/payment-intent`,
    {
      amount,
      currency: opts.currency ?? 'usd',
      payment_method: opts.paymentMethod ?? 'pm_card_visa',
      confirm: true,
    },
    opts.headers,
  );
  if (res.status !== 200 || res.json.status !== 'succeeded') {
    throw new Error(`paying an intent answered ${res.status}: ${res.text}`);
  }
  return res.json.paymentIntentId as string;
}

/**
 * Pays a checkout session on the sandbox's hosted page as a customer would (the Pay button's form post), and
 * answers the page's response (303 to success_url when paid).
 */
export function payOnHostedPage(checkoutUrl: string, card = 'pm_card_visa'): Promise<Response> {
  return fetch(checkoutUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `payment_method=${encodeURIComponent(card)}&email=buyer%40example.com`,
    redirect: 'manual',
  });
}

/** POSTs `body` to `serviceUrl`/webhook signed with `secret` now, as Stripe would send it. */
export function postSignedWebhook(serviceUrl: string, secret: string, body: string): Promise<Response> {
  return fetch(`${serviceUrl}/webhook`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'stripe-signature': Stripe.webhooks.generateTestHeaderString({
        payload: body,
        secret,
        timestamp: Math.floor(Date.now() / 1000),
      }),
    },
    body,
  });
}

/**
 * A request to `url` whose `Host` header names `host`, as a browser sends it for a page whose name resolves to
 * the server's address (fetch always sends the URL's own host). Answers the status, headers and body text.
 */
export function requestAs(
  url: string,
  host: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: init.method ?? 'GET', headers: { ...init.headers, host }, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(init.body);
  });
}

/** An answer of requestAs as the contract helper (answerViolations) takes it. */
export function asAnswer(r: Awaited<ReturnType<typeof requestAs>>) {
  const headers = new Headers();
  for (const [k, v] of Object.entries(r.headers)) if (typeof v === 'string') headers.set(k, v);
  return { status: r.status, headers, text: r.text };
}

/** A `customer.created` event's body as Stripe sends it: an event the service stores and applies to nothing. */
export function customerCreatedEvent(id: string, customerId: string): string {
  return JSON.stringify({
    id,
    object: 'event',
    type: 'customer.created',
    api_version: '2026-10-28.endive',
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    data: { object: { id: customerId, object: 'customer' } },
  });
}
