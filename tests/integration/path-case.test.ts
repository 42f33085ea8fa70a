/**
 * Paths are case-sensitive, as the contract's are (OpenAPI path templates are matched as written). Express routes
 * ignore case by default, so GET /DOCS served Swagger UI with the API's headers (the pages' policy is chosen by the
 * exact path), POST /Webhook stored Stripe's events but was answered 421 through a tunnel, and /HEALTHZ was a probe
 * for some checks and an unknown path for others. A path spelt in another case is now no path of the service: the
 * same 404 problem+json as any unknown path, and nothing is run for it.
 */
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountDemo } from '../../src/demo/mount.js';
import { customerCreatedEvent, requestAs } from '../helpers/http.js';
import { startSharedStripe, startTestService, type TestService } from '../helpers/service.js';
import { RABBITMQ_URL, rabbitAvailable } from '../helpers/services.js';
import { deleteEverything, topologyFor, uniquePrefix } from '../queue/support/rabbit.js';

const json = { 'content-type': 'application/json' };

/** The headers every API answer carries; the pages (/docs, /demo) get a browser policy instead. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

function signed(body: string, secret: string): Record<string, string> {
  return {
    ...json,
    'stripe-signature': Stripe.webhooks.generateTestHeaderString({
      payload: body,
      secret,
      timestamp: Math.floor(Date.now() / 1000),
    }),
  };
}

async function expectNoOperation(res: Response, method: string, path: string): Promise<void> {
  const what = `${method} ${path}`;
  expect(res.status, what).toBe(404);
  expect(res.headers.get('content-type'), what).toMatch(/^application\/problem\+json/);
  expect(res.headers.get('content-security-policy'), what).toBe(API_CSP);
  expect(res.headers.get('cache-control'), what).toBe('no-store');
  const problem = (await res.json()) as Record<string, unknown>;
  expect(problem, what).toMatchObject({
    status: 404,
    title: 'Not Found',
    detail: `No operation at ${what}.`,
    instance: path,
  });
  expect(problem.request_id, what).toBe(res.headers.get('x-request-id'));
}

describe('paths spelt in another case than the contract', () => {
  let svc: TestService;
  beforeAll(async () => {
    // The demo as main.ts mounts it beside the embedded sandbox.
    svc = await startTestService('sqlite', {}, { extraRoutes: (app) => mountDemo(app, {}) });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('are answered 404 problem+json with the API headers, and nothing is run for them', async () => {
    for (const path of [
      '/DOCS',
      '/Docs/',
      '/Demo/',
      '/DEMO/config.json',
      '/HEALTHZ',
      '/Metrics',
      '/OpenAPI.json',
    ])
      await expectNoOperation(await fetch(`${svc.url}${path}`), 'GET', path);
    for (const path of ['/Payment-Intent', '/PAYMENT-INTENT', '/Checkout-Session']) {
      const res = await fetch(`${svc.url}${path}`, {
        method: 'POST',
        headers: json,
        body: JSON.stringify({
          amount: 1000,
          currency: 'usd',
          payment_method: 'pm_card_visa',
          confirm: true,
        }),
      });
      await expectNoOperation(res, 'POST', path);
    }
    expect(svc.deps.sandbox!.stats().paymentIntents).toBe(0);
    // The server is still up and the contract's own spellings answer as before (a trailing slash is still allowed).
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${svc.url}/healthz/`)).status).toBe(200);
  });

  it('the pages keep their own headers under their own paths only', async () => {
    for (const path of ['/docs/', '/demo/']) {
      const res = await fetch(`${svc.url}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toMatch(/^text\/html/);
      expect(res.headers.get('content-security-policy'), path).toContain("script-src 'self'");
    }
  });

  it('POST /Webhook is not the webhook: a signed event is not stored, and through a tunnel it is refused like any path', async () => {
    const secret = svc.deps.webhookSecret;
    const event = (id: string) => customerCreatedEvent(id, 'cus_case');
    const body = event('evt_casevariant1');
    await expectNoOperation(
      await fetch(`${svc.url}/Webhook`, { method: 'POST', headers: signed(body, secret), body }),
      'POST',
      '/Webhook',
    );
    expect(await svc.deps.store.inbox.count()).toBe(0);

    // Through a tunnel (a host other than loopback) only the webhook itself is answered; /Webhook is not it.
    const tunnel = 'abc123.ngrok-free.app';
    const other = event('evt_casevariant2');
    const refused = await requestAs(`${svc.url}/WEBHOOK`, tunnel, {
      method: 'POST',
      headers: signed(other, secret),
      body: other,
    });
    expect(refused.status).toBe(421);
    expect(await svc.deps.store.inbox.count()).toBe(0);
    const taken = await requestAs(`${svc.url}/webhook`, tunnel, {
      method: 'POST',
      headers: signed(other, secret),
      body: other,
    });
    expect(taken.status).toBe(200);
    expect(await svc.deps.store.inbox.count()).toBe(1);
  });
});

describe.skipIf(!(await rabbitAvailable()))('a worker process (ROLE=worker)', () => {
  it('answers its probes under their own paths only', async () => {
    const prefix = uniquePrefix('pathcase');
    const stripe = await startSharedStripe();
    const worker = await startTestService(
      'sqlite',
      { RABBITMQ_URL, ROLE: 'worker', ...stripe.env },
      { topology: topologyFor(prefix) },
    );
    try {
      expect((await fetch(`${worker.url}/healthz`)).status).toBe(200);
      for (const path of ['/HEALTHZ', '/Metrics']) {
        const res = await fetch(`${worker.url}${path}`);
        expect(res.status, path).toBe(404);
        expect(res.headers.get('content-type'), path).toMatch(/^application\/problem\+json/);
      }
    } finally {
      await worker.stop();
      await stripe.close();
      await deleteEverything(prefix);
    }
  }, 30_000);
});
