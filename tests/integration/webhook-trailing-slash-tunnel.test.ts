/**
 * POST /webhook/ (one trailing slash) through a tunnel is answered as POST /webhook (it was refused 421 host_not_allowed).
 *
 * README: "One trailing slash is ignored (`/healthz/` is `GET /healthz`)", and a service on loopback without API keys
 * answers any `Host` on POST /webhook, "which answers only what Stripe signed, so a tunnel can forward Stripe's events
 * to it as they are". The webhook route itself takes /webhook/ (a signed event sent there with a loopback Host is
 * stored), and every other check that singles out a path compares it as routed (routedPath: the probes' exemption
 * from the caps, the key requirements). The loopback host check alone compared `req.path === '/webhook'`, so a Stripe
 * endpoint set up as `https://<tunnel>/webhook/` gets 421 for every event (a status the webhook's contract does not
 * list), Stripe retries for days and then disables the endpoint, while the same endpoint reached on localhost works.
 * The check now compares the path as routed.
 */
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerViolations } from '../helpers/contract.js';
import { asAnswer, requestAs } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

function event(id: string): string {
  return JSON.stringify({
    id,
    object: 'event',
    type: 'customer.created',
    api_version: '2026-10-28.endive',
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    data: { object: { id: 'cus_slash', object: 'customer' } },
  });
}

describe('a service on 127.0.0.1 without API keys, its webhook endpoint written with a trailing slash', () => {
  let svc: TestService;
  let port: string;
  beforeAll(async () => {
    svc = await startTestService('sqlite');
    port = new URL(svc.url).port;
  });
  afterAll(async () => {
    await svc?.stop();
  });

  const send = (host: string, body: string) =>
    requestAs(`${svc.url}/webhook/`, host, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'stripe-signature': Stripe.webhooks.generateTestHeaderString({
          payload: body,
          secret: svc.deps.webhookSecret,
          timestamp: Math.floor(Date.now() / 1000),
        }),
      },
      body,
    });

  it('stores a signed event sent to /webhook/ under a loopback name (the route takes the slash)', async () => {
    const res = await send(`127.0.0.1:${port}`, event('evt_slash_loopback'));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ success: true });
  });

  it("stores a signed event sent to /webhook/ through a tunnel, as POST /webhook's, not 421", async () => {
    const res = await send('c0ffee.tunnel.example', event('evt_slash_tunnel'));
    expect(answerViolations('handleStripeWebhook', asAnswer(res))).toEqual([]);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ success: true });
  });
});
