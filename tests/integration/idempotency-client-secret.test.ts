/**
 * A payment intent's client secret lets whoever holds it confirm the payment; Stripe asks that it be stored
 * nowhere. An Idempotency-Key keeps POST /payment-intent's answer for 24 hours, so it keeps the answer without
 * the secret, and a replay reads the secret from Stripe again: the client still gets the whole answer.
 * PostgreSQL: the test reads the kept answer over a connection of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../helpers/http.js';
import { postgresAvailable } from '../helpers/services.js';
import { startTestService, type TestService } from '../helpers/service.js';

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('POST /payment-intent under an Idempotency-Key (PostgreSQL)', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('postgres');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('keeps no client secret for replays, and a replay still answers it', async () => {
    const body = { amount: 4100, currency: 'usd', payment_method: 'pm_card_visa', confirm: true };
    const key = { 'Idempotency-Key': 'secret-kept-nowhere' };
    const first = await postJson(`${svc.url}/payment-intent`, body, key);
    expect(first.status).toBe(200);
    const secret = first.json.clientSecret as string;
    expect(secret).toMatch(/^pi_\w+_secret_\w+$/);

    const kept = await svc.sql(
      `SELECT response_body FROM idempotency_keys WHERE key = 'secret-kept-nowhere'`,
    );
    expect(kept).toHaveLength(1);
    expect(String(kept[0]!['response_body'])).toContain(first.json.paymentIntentId as string);
    expect(String(kept[0]!['response_body'])).not.toContain('_secret_');

    const replay = await postJson(`${svc.url}/payment-intent`, body, key);
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.json).toEqual(first.json);
    const intents = await svc.deps.stripe.paymentIntents.list({ limit: 100 });
    expect(intents.data.filter((pi) => pi.amount === 4100)).toHaveLength(1);

    // While Stripe cannot give the secret back, the replay is a retry-later, not a replay without it.
    await svc.faults({ error_rate: 1, match: { method: 'GET', path_prefix: '/v1/payment_intents' } });
    try {
      const down = await postJson(`${svc.url}/payment-intent`, body, key);
      expect(down.status).toBe(503);
      expect(down.json.code).toBe('upstream_unavailable');
      expect(down.headers.get('idempotent-replayed')).toBeNull();
    } finally {
      await svc.faults({});
    }
    expect((await postJson(`${svc.url}/payment-intent`, body, key)).json).toEqual(first.json);
  });
});
