/**
 * A webhook while the database is away (PostgreSQL behind a proxy the test controls). Stripe retries any answer but
 * a 2xx, so what matters is that an event is never acknowledged unless it is stored, and never lost once it is:
 *
 * - the database not answering: 503 store_unavailable with Retry-After, nothing stored, and Stripe's retry once it
 *   is back is stored and applied;
 * - the COMMIT applied but its answer lost: 503 too (the service cannot tell), the event is stored though no process
 *   began applying it, and Stripe's retry is acknowledged as a duplicate. The retry sweep applies it.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postSignedWebhook } from '../helpers/http.js';
import { postgresAvailable } from '../helpers/services.js';
import { eventually, startTestServiceBehindProxy, type TestService } from '../helpers/service.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';

const pg = await postgresAvailable();

describe.skipIf(!pg)('webhooks while PostgreSQL is away', () => {
  let proxy: TcpProxy;
  let svc: TestService;
  beforeAll(async () => {
    ({ proxy, svc } = await startTestServiceBehindProxy({
      DATABASE_TIMEOUT_MS: '400',
      REQUEST_TIMEOUT_MS: '5000',
      LOG_LEVEL: 'info',
    }));
  });
  afterAll(async () => {
    await proxy?.close();
    await svc?.stop();
  });

  /** A payment_intent.succeeded event for an intent paid at the embedded Stripe, which the ledger has not seen. */
  async function intentEvent(): Promise<{ id: string; pi: string; body: string }> {
    const pi = await svc.deps.stripe.paymentIntents.create({
      amount: 1500,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
      automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
    });
    const id = `evt_outage${randomBytes(8).toString('hex')}`;
    const body = JSON.stringify({
      id,
      object: 'event',
      type: 'payment_intent.succeeded',
      created: Math.floor(Date.now() / 1000),
      livemode: false,
      data: { object: { id: pi.id, object: 'payment_intent', status: 'succeeded' } },
    });
    return { id, pi: pi.id, body };
  }

  const send = (body: string) => postSignedWebhook(svc.url, svc.deps.webhookSecret, body);

  it('not answering: 503 with Retry-After and nothing stored; the retry once it is back is applied', async () => {
    const { id, body } = await intentEvent();
    proxy.blackHole();
    let res: Response;
    try {
      res = await send(body);
    } finally {
      proxy.forward();
    }
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toMatchObject({ status: 503, code: 'store_unavailable' });
    expect(await svc.deps.store.inbox.get(id)).toBeNull();

    const retry = await eventually(
      () => send(body),
      (r) => r.status !== 503,
      20_000,
    );
    expect(retry.status).toBe(200);
    expect(await retry.json()).toEqual({ success: true });
    await svc.deps.webhooks.idle();
    expect(await svc.deps.store.inbox.get(id)).toMatchObject({ processedAt: expect.any(String) });
  });

  it('the COMMIT applied and its answer lost: 503, then the retry is a duplicate, and the sweep applies it', async () => {
    const { id, pi, body } = await intentEvent();
    proxy.loseAnswersAfter(id, 'commit');
    let res: Response;
    try {
      res = await send(body);
    } finally {
      proxy.loseAnswersAfter(null, 'commit');
    }
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'store_unavailable' });

    const retry = await send(body);
    expect(retry.status).toBe(200);
    expect(await retry.json()).toEqual({ success: true, duplicate: true });
    // Stored once, published once (one outbox row), and applied by the retry sweep.
    const applied = await eventually(
      () => svc.deps.store.inbox.get(id),
      (e) => e?.processedAt != null,
      60_000,
    );
    expect(applied).toMatchObject({ processedAt: expect.any(String), attempts: 0 });
    expect(await svc.sql(`SELECT count(*)::int AS n FROM outbox WHERE message_id = '${id}'`)).toEqual([
      { n: 1 },
    ]);
    expect(await svc.deps.store.payments.get(pi)).toMatchObject({ status: 'succeeded' });
  }, 90_000);
});
