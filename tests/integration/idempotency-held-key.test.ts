/**
 * A retry whose Idempotency-Key another request holds gets 409 idempotency_key_in_use. While that request may
 * still be running, Retry-After is a second. A key held longer than any live request would be (its process most
 * likely died) is taken over once the claim is 10 minutes old: Retry-After then says when, instead of sending
 * the client back every second for up to ten minutes. PostgreSQL: the test ages the claim over a connection of
 * its own, as a process that died minutes ago would have left it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../helpers/http.js';
import { postgresAvailable } from '../helpers/services.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

const pgOk = await postgresAvailable();

describe.skipIf(!pgOk)('a retry while another request holds its Idempotency-Key (PostgreSQL)', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('postgres');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('is told to retry in a second while the holder may be running, and when the key frees once it is old', async () => {
    const body = { amount: 1900, currency: 'usd', payment_method: 'pm_card_visa', confirm: true };
    const key = { 'Idempotency-Key': 'held-key' };
    await svc.faults({ latency_ms: 1_500, match: { method: 'POST', path_prefix: '/v1/payment_intents' } });
    try {
      const holder = postJson(`${svc.url}/payment-intent`, body, key);
      await eventually(
        () => svc.sql(`SELECT state FROM idempotency_keys WHERE key = 'held-key'`),
        (rows) => rows.length === 1,
        5_000,
      );
      const young = await postJson(`${svc.url}/payment-intent`, body, key);
      expect(young.status).toBe(409);
      expect(young.json).toMatchObject({ code: 'idempotency_key_in_use', retry_after: 1 });
      expect(young.headers.get('retry-after')).toBe('1');

      // The same claim as a process that died four minutes ago would have left it.
      await svc.sql(
        `UPDATE idempotency_keys SET created_at = created_at - interval '4 minutes' WHERE key = 'held-key'`,
      );
      const old = await postJson(`${svc.url}/payment-intent`, body, key);
      expect(old.status).toBe(409);
      expect(old.json.code).toBe('idempotency_key_in_use');
      // Ten minutes after the claim: about six minutes from now.
      const wait = Number(old.headers.get('retry-after'));
      expect(wait).toBeGreaterThan(350);
      expect(wait).toBeLessThanOrEqual(360);
      expect(old.json.retry_after).toBe(wait);
      expect(old.json.detail).toMatch(/held it for 24\d s/);
      expect((await holder).status).toBe(200);
    } finally {
      await svc.faults({});
    }
  });
});
