/**
 * DNS rebinding. Without API keys the service listens on 127.0.0.1 only, but a page the developer opens in a
 * browser on the same machine can still call it: the page's name (evil.example) resolves to the attacker's server
 * first, then to 127.0.0.1, and every later request of the page goes to the service as same-origin, so it can pay,
 * refund and read the answers. The browser names the page's host in `Host`, so a service on loopback answers only
 * requests naming a loopback host.
 */
import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { answerViolations } from '../helpers/contract.js';
import { asAnswer, customerCreatedEvent, getJson, paidIntent, postJson, requestAs } from '../helpers/http.js';
import { startSharedStripe, startTestService, type TestService } from '../helpers/service.js';
import { RABBITMQ_URL, rabbitAvailable } from '../helpers/services.js';
import { deleteEverything, topologyFor, uniquePrefix } from '../queue/support/rabbit.js';

const PAYMENT = { amount: 10000, currency: 'sgd', payment_method: 'pm_card_visa', confirm: true };
const json = { 'content-type': 'application/json' };

describe('a service listening on 127.0.0.1 without API keys (embedded mode)', () => {
  let svc: TestService;
  let port: string;
  beforeAll(async () => {
    svc = await startTestService('sqlite');
    port = new URL(svc.url).port;
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('refuses a request naming another host with 421 host_not_allowed: no payment is made', async () => {
    const res = await requestAs(`${svc.url}/payment-intent`, `evil.example:${port}`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify(PAYMENT),
    });
    expect(res.status).toBe(421);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const problem = JSON.parse(res.text) as Record<string, unknown>;
    expect(problem).toMatchObject({
      status: 421,
      title: 'Misdirected Request',
      code: 'host_not_allowed',
      instance: '/payment-intent',
    });
    expect(problem.detail).toContain('"evil.example:');
    expect(problem.detail).toContain('list its name in ALLOWED_HOSTS');
    expect(problem.request_id).toBe(res.headers['x-request-id']);
    expect(answerViolations('createPaymentIntent', asAnswer(res))).toEqual([]);
    expect(svc.deps.sandbox!.stats().paymentIntents).toBe(0);
    expect(svc.lines.some((l) => l.includes('refused a request for another host'))).toBe(true);
  });

  it('refuses every path under another name (reads, refunds, pages, probes); the service stays up', async () => {
    const pi = await paidIntent(svc.url, 5000);
    const evil = `evil.example:${port}`;
    const refund = await requestAs(`${svc.url}/refund`, evil, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ payment_intent_id: pi, amount: 5000 }),
    });
    expect(refund.status).toBe(421);
    expect(answerViolations('createRefund', asAnswer(refund))).toEqual([]);
    const asyncRefund = await requestAs(`${svc.url}/refund-async`, evil, {
      method: 'POST',
      headers: json,
      body: JSON.stringify({ payment_intent_id: pi, amount: 5000, request_id: 'rebound-1' }),
    });
    expect(asyncRefund.status).toBe(421);
    const read = await requestAs(`${svc.url}/payment-intent/${pi}`, evil);
    expect(read.status).toBe(421);
    expect(JSON.parse(read.text)).not.toHaveProperty('amount');
    expect(answerViolations('getPaymentIntent', asAnswer(read))).toEqual([]);
    for (const path of ['/docs/', '/openapi.json', '/healthz', '/readyz', '/metrics', '/refund-status/x']) {
      expect([path, (await requestAs(svc.url + path, evil)).status]).toEqual([path, 421]);
    }
    // Nothing was refunded, nor queued; the loopback name still works.
    const intent = await getJson(`${svc.url}/payment-intent/${pi}`);
    expect(intent.json).toMatchObject({ status: 'succeeded', amount_refunded: 0 });
    expect(svc.deps.sandbox!.stats().refunds).toBe(0);
    expect((await getJson(`${svc.url}/refund-status/rebound-1`)).status).toBe(404);
    expect((await getJson(`${svc.url}/healthz`)).status).toBe(200);
  });

  // A tunnel (ngrok and the like) forwarding Stripe's events to a developer's machine names its own host: every
  // event got 421, and Stripe, retrying in vain, would disable the endpoint.
  it("answers Stripe's webhooks under any name: a signed event is stored, an unsigned one is a 400", async () => {
    const tunnel = 'c0ffee.tunnel.example';
    const event = (id: string) => customerCreatedEvent(id, 'cus_tunnel');
    const sendSigned = (path: string, body: string) =>
      requestAs(`${svc.url}${path}`, tunnel, {
        method: 'POST',
        headers: {
          ...json,
          'stripe-signature': Stripe.webhooks.generateTestHeaderString({
            payload: body,
            secret: svc.deps.webhookSecret,
            timestamp: Math.floor(Date.now() / 1000),
          }),
        },
        body,
      });
    const body = event('evt_through_a_tunnel');
    const signed = await sendSigned('/webhook', body);
    expect(signed.status).toBe(200);
    expect(JSON.parse(signed.text)).toEqual({ success: true });
    // An endpoint set up as https://<tunnel>/webhook/: one trailing slash is ignored, as by the webhook's route and
    // every other path check. The host check alone compared the path as sent, and every event got 421 (a status the
    // webhook's contract does not list) while the same endpoint reached on localhost worked.
    const slashed = await sendSigned('/webhook/', event('evt_through_a_tunnel_slash'));
    expect(answerViolations('handleStripeWebhook', asAnswer(slashed))).toEqual([]);
    expect(slashed.status).toBe(200);
    expect(JSON.parse(slashed.text)).toEqual({ success: true });
    const unsigned = await requestAs(`${svc.url}/webhook`, tunnel, { method: 'POST', headers: json, body });
    expect(unsigned.status).toBe(400);
    // The API itself is still refused under that name.
    expect((await requestAs(`${svc.url}/healthz`, tunnel)).status).toBe(421);
  });

  it('refuses names that only look like loopback ones', async () => {
    for (const host of [
      'evil.example',
      'localhost.evil.example',
      `localhost.evil.example:${port}`,
      'evillocalhost',
      '127.0.0.1.evil.example',
      '7f000001.c0a80001.rbndr.us',
      '127.0.0.256',
      '0.0.0.0',
      // A tunnel's name, until ALLOWED_HOSTS lists it (below).
      'tunnel.example',
      'tunnel.example:443',
      '[::2]',
      `127.0.0.1:${port}.evil.example`,
    ]) {
      expect([host, (await requestAs(`${svc.url}/healthz`, host)).status]).toEqual([host, 421]);
    }
  });

  it('answers loopback names, with or without a port, as curl and browsers on this machine send them', async () => {
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      'localhost',
      `LocalHost:${port}`,
      `shop.localhost:${port}`,
      `127.0.0.2:${port}`,
      `[::1]:${port}`,
      `localhost.:${port}`,
    ]) {
      expect([host, (await requestAs(`${svc.url}/healthz`, host)).status]).toEqual([host, 200]);
    }
    // The README's Quick start: curl localhost:5000/payment-intent ...
    const paid = await requestAs(`${svc.url}/payment-intent`, `localhost:${port}`, {
      method: 'POST',
      headers: json,
      body: JSON.stringify(PAYMENT),
    });
    expect(paid.status).toBe(200);
    expect(JSON.parse(paid.text)).toMatchObject({ success: true, status: 'succeeded' });
  });
});

// A developer forwarding Stripe's events (and trying the API) through a tunnel, or a reverse proxy on the same
// machine that passes Host through, names its host in ALLOWED_HOSTS.
describe('ALLOWED_HOSTS on a service listening on 127.0.0.1 without API keys', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('sqlite', { ALLOWED_HOSTS: 'Tunnel.Example, *.ngrok.example' });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('answers the listed names, with or without a port, on the probes and the API', async () => {
    for (const host of [
      'tunnel.example',
      'tunnel.example:443',
      'TUNNEL.example:8080',
      'c0ffee.ngrok.example',
    ]) {
      expect([host, (await requestAs(`${svc.url}/healthz`, host)).status]).toEqual([host, 200]);
    }
    const paid = await requestAs(`${svc.url}/payment-intent`, 'tunnel.example:443', {
      method: 'POST',
      headers: json,
      body: JSON.stringify(PAYMENT),
    });
    expect(paid.status).toBe(200);
    const intent = JSON.parse(paid.text) as { paymentIntentId: string; status: string };
    expect(intent.status).toBe('succeeded');
    const read = await requestAs(`${svc.url}/payment-intent/${intent.paymentIntentId}`, 'tunnel.example');
    expect(read.status).toBe(200);
    expect(JSON.parse(read.text)).toMatchObject({ status: 'succeeded', amount: PAYMENT.amount });
  });

  it("takes Stripe's webhooks under a listed name to the webhook handler: signed stored, unsigned 400", async () => {
    const body = customerCreatedEvent('evt_through_an_allowed_tunnel', 'cus_allowed_tunnel');
    const signature = Stripe.webhooks.generateTestHeaderString({
      payload: body,
      secret: svc.deps.webhookSecret,
      timestamp: Math.floor(Date.now() / 1000),
    });
    const signed = await requestAs(`${svc.url}/webhook`, 'tunnel.example:443', {
      method: 'POST',
      headers: { ...json, 'stripe-signature': signature },
      body,
    });
    expect(signed.status).toBe(200);
    expect(JSON.parse(signed.text)).toEqual({ success: true });
    const unsigned = await requestAs(`${svc.url}/webhook`, 'tunnel.example', {
      method: 'POST',
      headers: json,
      body,
    });
    expect(unsigned.status).toBe(400);
  });

  it("still refuses every other name: a subdomain of an exact name, a *. entry's domain itself, look-alikes", async () => {
    const before = svc.deps.sandbox!.stats().paymentIntents;
    for (const host of [
      'evil.example',
      'sub.tunnel.example',
      'tunnel.example.evil.example',
      'eviltunnel.example',
      'ngrok.example',
      'evilngrok.example',
      'c0ffee.ngrok.example.evil.example',
    ]) {
      const res = await requestAs(`${svc.url}/payment-intent`, host, {
        method: 'POST',
        headers: json,
        body: JSON.stringify(PAYMENT),
      });
      expect([host, res.status, JSON.parse(res.text).code]).toEqual([host, 421, 'host_not_allowed']);
    }
    expect(svc.deps.sandbox!.stats().paymentIntents).toBe(before);
    // Loopback names are answered as before.
    expect((await getJson(`${svc.url}/healthz`)).status).toBe(200);
  });
});

describe('where the check does not apply', () => {
  let svc: TestService | undefined;
  afterEach(async () => {
    await svc?.stop();
    svc = undefined;
  });

  it('HOST=0.0.0.0 (the Docker image): another name is answered, as before', async () => {
    svc = await startTestService('sqlite', { HOST: '0.0.0.0' });
    const paid = await requestAs(`${svc.url}/payment-intent`, 'payments.internal:5000', {
      method: 'POST',
      headers: json,
      body: JSON.stringify(PAYMENT),
    });
    expect(paid.status).toBe(200);
  });

  it('HOST=0.0.0.0 with ALLOWED_HOSTS: it restricts nothing, and the start says so', async () => {
    svc = await startTestService('sqlite', { HOST: '0.0.0.0', ALLOWED_HOSTS: 'tunnel.example' });
    expect((await requestAs(`${svc.url}/healthz`, 'payments.internal:5000')).status).toBe(200);
    expect(svc.lines.some((l) => l.includes('ALLOWED_HOSTS has no effect'))).toBe(true);
  });

  it.each([
    { host: '', where: 'listening on every address' },
    {
      host: '127.0.0.1',
      where: 'HOST=127.0.0.1, a reverse proxy on the same machine passing the public name',
    },
  ])('API keys on ($where): another name is answered', async ({ host }) => {
    svc = await startTestService('sqlite', { HOST: host, API_AUTH: 'on' });
    const { key } = await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' });
    const paid = await requestAs(`${svc.url}/payment-intent`, 'payments.example.com', {
      method: 'POST',
      headers: { ...json, authorization: `Bearer ${key}` },
      body: JSON.stringify(PAYMENT),
    });
    expect(paid.status).toBe(200);
  });

  it('HOST=::1: starts, answers [::1] and localhost, refuses another name', async () => {
    svc = await startTestService('sqlite', { HOST: '::1' });
    expect(svc.url).toBe(`http://[::1]:${svc.port}`);
    expect((await postJson(`${svc.url}/payment-intent`, PAYMENT)).status).toBe(200);
    expect((await requestAs(`${svc.url}/healthz`, `localhost:${svc.port}`)).status).toBe(200);
    expect((await requestAs(`${svc.url}/healthz`, `evil.example:${svc.port}`)).status).toBe(421);
  });

  it('HOST=localhost: the name it listens under is answered, another refused', async () => {
    svc = await startTestService('sqlite', { HOST: 'localhost' });
    const { port } = new URL(svc.url);
    expect((await postJson(`${svc.url}/payment-intent`, PAYMENT)).status).toBe(200);
    expect((await requestAs(`${svc.url}/healthz`, `evil.example:${port}`)).status).toBe(421);
  });
});

describe.skipIf(!(await rabbitAvailable()))('a worker process (ROLE=worker) on 127.0.0.1', () => {
  it('refuses its health app under another name too (metrics name every queue and operation)', async () => {
    const prefix = uniquePrefix('rebindw');
    const stripe = await startSharedStripe();
    const svc = await startTestService(
      'sqlite',
      { RABBITMQ_URL, ROLE: 'worker', ...stripe.env, API_AUTH: 'off' },
      { topology: topologyFor(prefix) },
    );
    try {
      const { port } = new URL(svc.url);
      const refused = await requestAs(`${svc.url}/metrics`, `evil.example:${port}`);
      expect(refused.status).toBe(421);
      expect(JSON.parse(refused.text)).toMatchObject({ code: 'host_not_allowed' });
      expect((await requestAs(`${svc.url}/healthz`, `localhost:${port}`)).status).toBe(200);
    } finally {
      await svc.stop();
      await stripe.close();
      await deleteEverything(prefix);
    }
  });
});
