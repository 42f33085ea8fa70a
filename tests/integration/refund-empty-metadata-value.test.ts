/**
 * A refund's metadata value of `""` is, at Stripe, a key not set (on create an empty value sets nothing): the service
 * passed `{"k": ""}` on and Stripe's refund has no `k`. Yet the refund ledger compared a request_id's bodies, and an
 * Idempotency-Key its body, with `k` as another request than the body without it: a retry that left the empty key
 * out (another client library, say, that drops empty strings) got 409 request_id_conflict or 422
 * idempotency_key_reused for the refund its first try made, and the ledger kept `k: ""`, which Stripe's refund has
 * not. A key of empty value is now taken as not given for refunds too, sync and queued, and the ledger keeps the
 * metadata as Stripe does. A row an earlier version wrote with `k: ""` still replays its exact body; the reserved
 * key is still refused as sent, even empty.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refundRequestHash } from '../../src/refunds/service.js';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestService, type Db, type TestService } from '../helpers/service.js';
import { postgresAvailable } from '../helpers/services.js';

// PostgreSQL too: a queued refund's accept there is one statement of its own (acceptAnnounced).
const dbs: Db[] = ['sqlite', ...((await postgresAvailable()) ? (['postgres'] as const) : [])];

let svc: TestService;

const unique = (name: string) => `${name}-${randomBytes(4).toString('hex')}`;

/** The refunds Stripe holds on `pi`. */
async function stripeRefunds(pi: string) {
  return (await svc.deps.stripe.refunds.list({ payment_intent: pi, limit: 100 })).data;
}

/** Waits until the refund `requestId` names is made (or failed); its status answer. */
async function settled(requestId: string) {
  return eventually(
    () => getJson(`${svc.url}/refund-status/${requestId}`),
    (r) => r.json?.status === 'succeeded' || r.json?.status === 'failed',
  );
}

/** What Stripe's only refund on `pi` and its ledger row keep as metadata (the client's, without request_id). */
async function keptMetadata(pi: string) {
  const refunds = await stripeRefunds(pi);
  expect(refunds).toHaveLength(1);
  const { request_id: _ours, ...atStripe } = refunds[0]!.metadata ?? {};
  const row = await svc.deps.store.refunds.getByStripeId(refunds[0]!.id);
  return { atStripe, inLedger: row?.metadata };
}

describe.each(dbs)('a refund metadata value of "" is taken as Stripe takes it: not set (%s)', (db) => {
  beforeAll(async () => {
    svc = await startTestService(db, { RATE_LIMIT_PER_MINUTE: '0', LOG_LEVEL: 'silent' });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('POST /refund: the same request_id with {"order", "k": ""} then {"order"} is one refund, replayed', async () => {
    const pi = await paidIntent(svc.url, 5000);
    const request_id = unique('empty-value-sync');
    const body = { payment_intent_id: pi, amount: 1000, request_id };
    const first = await postJson(`${svc.url}/refund`, { ...body, metadata: { order: 'o-1', k: '' } });
    expect(first.status, first.text).toBe(200);

    const again = await postJson(`${svc.url}/refund`, { ...body, metadata: { order: 'o-1' } });
    expect(again.status, again.text).toBe(200);
    expect((again.json.refund as { id: string }).id).toBe((first.json.refund as { id: string }).id);
    expect(await keptMetadata(pi)).toEqual({ atStripe: { order: 'o-1' }, inLedger: { order: 'o-1' } });

    // And the other way round: without `k` first, then with it.
    const pi2 = await paidIntent(svc.url, 5000);
    const other = { payment_intent_id: pi2, amount: 1000, request_id: unique('empty-value-sync-rev') };
    const bare = await postJson(`${svc.url}/refund`, other);
    expect(bare.status, bare.text).toBe(200);
    const withEmpty = await postJson(`${svc.url}/refund`, { ...other, metadata: { k: '' } });
    expect(withEmpty.status, withEmpty.text).toBe(200);
    expect((withEmpty.json.refund as { id: string }).id).toBe((bare.json.refund as { id: string }).id);
    expect(await stripeRefunds(pi2)).toHaveLength(1);
  });

  it('POST /refund-async: the same request_id with {"order", "k": ""} then {"order"} is one refund', async () => {
    const pi = await paidIntent(svc.url, 5000);
    const request_id = unique('empty-value-async');
    const body = { payment_intent_id: pi, amount: 1000, request_id };
    const first = await postJson(`${svc.url}/refund-async`, { ...body, metadata: { order: 'o-2', k: '' } });
    expect(first.status, first.text).toBe(202);
    const again = await postJson(`${svc.url}/refund-async`, { ...body, metadata: { order: 'o-2' } });
    expect(again.status, again.text).toBe(202);
    expect(again.json.request_id).toBe(request_id);

    expect((await settled(request_id)).json.status).toBe('succeeded');
    expect(await keptMetadata(pi)).toEqual({ atStripe: { order: 'o-2' }, inLedger: { order: 'o-2' } });
    // Sent again once made: still the same request, nothing more refunded.
    const late = await postJson(`${svc.url}/refund-async`, { ...body, metadata: { order: 'o-2', k: '' } });
    expect(late.status, late.text).toBe(202);
    expect(await stripeRefunds(pi)).toHaveLength(1);
  });

  it.each(['/refund', '/refund-async'])(
    '%s: one Idempotency-Key with {"order", "k": ""} then {"order"} replays, also a day later',
    async (path) => {
      const pi = await paidIntent(svc.url, 5000);
      const key = { 'Idempotency-Key': unique(`empty-value-key${path.replace('/', '-')}`) };
      const body = { payment_intent_id: pi, amount: 1000 };
      const first = await postJson(`${svc.url}${path}`, { ...body, metadata: { order: 'o-3', k: '' } }, key);
      expect(first.status, first.text).toBeLessThan(300);
      const again = await postJson(`${svc.url}${path}`, { ...body, metadata: { order: 'o-3' } }, key);
      expect(again.status, again.text).toBe(first.status);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.json.request_id).toBe(first.json.request_id);
      const requestId = String(first.json.request_id);
      expect((await settled(requestId)).json.status).toBe('succeeded');

      // A day later the key's answer is gone: the ledger finds the refund by the request_id derived from the key.
      await svc.deps.store.idempotency.purgeExpired(new Date(Date.now() + 25 * 60 * 60 * 1000));
      const dayLater = await postJson(`${svc.url}${path}`, { ...body, metadata: { order: 'o-3' } }, key);
      expect(dayLater.status, dayLater.text).toBe(first.status);
      expect(dayLater.headers.get('idempotent-replayed')).toBeNull();
      expect(dayLater.json.request_id).toBe(requestId);
      expect(await keptMetadata(pi)).toEqual({ atStripe: { order: 'o-3' }, inLedger: { order: 'o-3' } });
    },
  );

  it('a value that is not empty is still another body', async () => {
    const pi = await paidIntent(svc.url, 5000);
    const body = { payment_intent_id: pi, amount: 1000, request_id: unique('empty-value-other') };
    expect((await postJson(`${svc.url}/refund`, { ...body, metadata: { k: '' } })).status).toBe(200);
    const other = await postJson(`${svc.url}/refund`, { ...body, metadata: { k: ' ' } });
    expect(other.status, other.text).toBe(409);
    expect(other.json.code).toBe('request_id_conflict');
    expect(await stripeRefunds(pi)).toHaveLength(1);
  });

  it('a row an earlier version kept with "k": "" still replays its exact body', async () => {
    const pi = await paidIntent(svc.url, 5000);
    // Made by an earlier version (its row as it left it; the refund itself is not needed here): it kept the
    // metadata, and hashed the body, as sent.
    const sent = {
      payment_intent_id: pi,
      amount: 1000,
      request_id: unique('empty-value-earlier'),
      metadata: { order: 'o-4', k: '' },
    };
    const made = { id: `re_${randomBytes(12).toString('hex')}` };
    await svc.deps.store.refunds.insert({
      requestId: sent.request_id,
      paymentIntentId: pi,
      amount: 1000,
      currency: 'usd',
      status: 'succeeded',
      stripeRefundId: made.id,
      attempts: 1,
      mode: 'sync',
      requestHash: refundRequestHash(sent),
      metadata: sent.metadata,
    });
    const replay = await postJson(`${svc.url}/refund`, sent);
    expect(replay.status, replay.text).toBe(200);
    expect((replay.json.refund as { id: string }).id).toBe(made.id);
    const queued = await postJson(`${svc.url}/refund-async`, sent);
    expect(queued.status, queued.text).toBe(202);
    expect(queued.json.request_id).toBe(sent.request_id);
    // Nothing asked of Stripe.
    expect(await stripeRefunds(pi)).toHaveLength(0);
  });

  it.each(['/refund', '/refund-async'])(
    '%s: the reserved key is refused as sent, even with an empty value',
    async (path) => {
      const pi = await paidIntent(svc.url, 1000);
      const request_id = unique('empty-value-reserved');
      const res = await postJson(`${svc.url}${path}`, {
        payment_intent_id: pi,
        request_id,
        metadata: { payment_service_lowered_from: '' },
      });
      expect(res.status, res.text).toBe(400);
      expect(res.json).toMatchObject({ code: 'metadata_key_reserved', param: 'metadata' });
      expect((await getJson(`${svc.url}/refund-status/${request_id}`)).status).toBe(404);
    },
  );
});
