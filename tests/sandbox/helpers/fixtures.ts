import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { startSandbox, type Sandbox, type SandboxOptions } from '../../../src/sandbox/index.js';

export const TEST_KEY = 'sk_test_sandboxSuiteKey000000001';

export { startSandbox };
export type { Sandbox, SandboxOptions };

/** An SDK client pointed at the sandbox; no automatic retries unless asked, so tests see each answer. */
export function stripeFor(
  sandbox: Sandbox,
  options: { apiKey?: string; maxNetworkRetries?: number } = {},
): Stripe {
  return new Stripe(options.apiKey ?? TEST_KEY, {
    host: '127.0.0.1',
    port: sandbox.port,
    protocol: 'http',
    maxNetworkRetries: options.maxNetworkRetries ?? 0,
    telemetry: false,
  });
}

/** Polls until `check` returns something other than undefined/false (async work such as webhooks). */
export async function waitFor<T>(
  check: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 15));
  }
}

export interface ReceivedWebhook {
  signature: string;
  contentType: string;
  body: string;
  status: number;
}

export interface Receiver {
  url: string;
  hooks: ReceivedWebhook[];
  close(): Promise<void>;
}

/** A local webhook endpoint; `statusFor` picks the HTTP status for the n-th delivery (0-based). */
export async function startReceiver(
  statusFor: (n: number, body: string) => number = () => 200,
): Promise<Receiver> {
  const hooks: ReceivedWebhook[] = [];
  let n = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const status = statusFor(n++, body);
      hooks.push({
        signature: String(req.headers['stripe-signature'] ?? ''),
        contentType: String(req.headers['content-type'] ?? ''),
        body,
        status,
      });
      res.writeHead(status, { 'Content-Type': 'text/plain' });
      res.end(status < 300 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhook`,
    hooks,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  json: unknown;
}

/** Plain HTTP to the sandbox (control API, raw API calls the SDK would never make). */
export async function request(
  sandbox: Sandbox,
  method: string,
  path: string,
  options: { body?: string; headers?: Record<string, string> } = {},
): Promise<JsonResponse> {
  const res = await fetch(`${sandbox.url}${path}`, {
    method,
    headers: options.headers ?? {},
    ...(options.body !== undefined ? { body: options.body } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, headers: res.headers, json };
}

export const authHeaders = (key = TEST_KEY): Record<string, string> => ({
  Authorization: `Bearer ${key}`,
  'Content-Type': 'application/x-www-form-urlencoded',
});

export function control(
  sandbox: Sandbox,
  method: string,
  path: string,
  body?: unknown,
): Promise<JsonResponse> {
  return request(sandbox, method, `/_sandbox${path}`, {
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    headers: { 'Content-Type': 'application/json' },
  });
}

/** Card-only PaymentIntent params: no redirect-based methods, so no return_url is needed. */
export const cardOnly = { automatic_payment_methods: { enabled: true, allow_redirects: 'never' as const } };

/** Runs `fn` and returns the error it throws (fails the test if it does not throw). */
export async function errorOf(fn: () => Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await fn();
  } catch (err) {
    return err as Stripe.errors.StripeError;
  }
  throw new Error('expected the call to fail');
}

export async function paidIntent(
  stripe: Stripe,
  amount = 2000,
  paymentMethod = 'pm_card_visa',
  currency = 'usd',
) {
  return stripe.paymentIntents.create({
    amount,
    currency,
    payment_method: paymentMethod,
    confirm: true,
    ...cardOnly,
  });
}
