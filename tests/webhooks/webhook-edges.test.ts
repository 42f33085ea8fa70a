/**
 * POST /webhook edges not covered by tests/webhooks/signature.test.ts:
 *
 * - Any other method on /webhook answered 404 "No operation at GET /webhook." (the path is kept away from
 *   the contract validator, which answers 405 with Allow for every other path of the contract).
 * - A signed event whose id, type or object id holds a NUL character was stored as it is: PostgreSQL refuses
 *   NUL in text, so the webhook answered 500 (and Stripe would retry it for days). No Stripe id holds
 *   control characters; such an event is refused like any other body that is not a Stripe event.
 * - A signed event nested tens of thousands of levels deep (within the 512 kB body limit) parsed, but storing
 *   it (JSON.stringify in the store's codec) overflowed the stack: 500, logged as an error, nothing stored,
 *   and the same 500 on every retry. A shallower one (a few thousand levels) was stored and published to
 *   stripe.events. No Stripe event nests anywhere near 64 levels; deeper is refused as event_invalid.
 * - A signed event whose object id was longer than a Stripe id (up to 255 characters) was stored with it in
 *   webhook_events.object_id, which is indexed: PostgreSQL refuses an index entry over 2,704 bytes, so an id of
 *   a few thousand characters answered 500 (and Stripe would retry it for days). It is refused as event_invalid,
 *   like a too-long event id or type.
 * - An event id or type of up to 255 characters was taken however many bytes it had; as AMQP short strings
 *   (message id, routing key) they may have 255 bytes at most, so the event's stripe.events message could never
 *   be published. Ids and types are now limited to 255 bytes.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postSignedWebhook } from '../helpers/http.js';
import { postgresAvailable } from '../helpers/services.js';
import { startTestService, type Db, type TestService } from '../helpers/service.js';
import { MAX_EVENT_DEPTH } from '../../src/webhooks/verify.js';

const pg = await postgresAvailable();

describe.each<Db>(['sqlite', ...(pg ? (['postgres'] as const) : [])])('webhook edges on %s', (db) => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService(db, { API_AUTH: 'on', LOG_LEVEL: 'warn' });
  });
  afterAll(async () => {
    await svc?.stop();
  });

  const send = (body: string) => postSignedWebhook(svc.url, svc.deps.webhookSecret, body);

  const event = (over: Record<string, unknown>) =>
    JSON.stringify({
      id: `evt_edge${Math.random().toString(36).slice(2)}`,
      object: 'event',
      type: 'refund.updated',
      created: Math.floor(Date.now() / 1000),
      data: { object: { id: 're_edge1', object: 'refund', amount: 100, status: 'succeeded' } },
      ...over,
    });

  it.each([
    ['its id', { id: 'evt_\u0000x' }],
    ['its type', { type: 'refund.\u0000updated' }],
    ['its object id', { data: { object: { id: 're_\u0000', object: 'refund' } } }],
  ])('a signed event with a NUL in %s → 400 event_invalid, not 500', async (_what, over) => {
    const res = await send(event(over));
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ status: 400, code: 'event_invalid' });
  });

  /** A signed event with `levels` more objects (or arrays) nested inside data.object. */
  const nested = (id: string, levels: number, open = '{"a":', close = '}') =>
    `{"id":"${id}","object":"event","type":"payment_intent.succeeded","created":${Math.floor(Date.now() / 1000)},` +
    `"data":{"object":{"id":"pi_deep1","object":"payment_intent","x":${open.repeat(levels)}1${close.repeat(levels)}}}}`;

  it.each([
    ['80,000 objects', nested('evt_deep_objects', 80_000)],
    ['200,000 arrays', nested('evt_deep_arrays', 200_000, '[', ']')],
    ['a few thousand objects', nested('evt_deep_some', 4_000)],
    [`${MAX_EVENT_DEPTH + 1} levels in all`, nested('evt_deep_just', MAX_EVENT_DEPTH - 2)],
  ])(
    'a signed event nested %s deep → 400 event_invalid, nothing stored, the same on redelivery',
    async (_what, body) => {
      expect(body.length).toBeLessThan(512 * 1024);
      const id = /"id":"(evt_[a-z_]+)"/.exec(body)![1]!;
      const before = await svc.deps.store.inbox.count();
      for (let attempt = 0; attempt < 2; attempt++) {
        const res = await send(body);
        expect(res.status).toBe(400);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(await res.json()).toMatchObject({ status: 400, code: 'event_invalid' });
      }
      expect(await svc.deps.store.inbox.get(id)).toBeNull();
      expect(await svc.deps.store.inbox.count()).toBe(before);
      expect(svc.lines.filter((l) => l.includes('"level":50'))).toEqual([]);
    },
  );

  it(`a signed event nested ${MAX_EVENT_DEPTH} levels in all is accepted`, async () => {
    const res = await send(nested('evt_deep_ok', MAX_EVENT_DEPTH - 3));
    expect(res.status).toBe(200);
    expect(await svc.deps.store.inbox.get('evt_deep_ok')).not.toBeNull();
  });

  it.each([
    ['a few thousand characters', 3_000, 400],
    ['256 characters', 256, 400],
    ['255 characters, the longest a Stripe id has', 255, 200],
  ])('a signed event whose object id has %s (%i) → %i', async (_what, length, status) => {
    // Random characters: PostgreSQL compresses a repetitive index entry below its limit.
    const objectId = `re_${randomBytes(length).toString('base64url')}`.slice(0, length);
    const id = `evt_longobj${length}`;
    const res = await send(
      event({ id, data: { object: { id: objectId, object: 'refund', status: 'pending' } } }),
    );
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(
      status === 400 ? /^application\/problem\+json/ : /^application\/json/,
    );
    if (status === 400) {
      expect(await res.json()).toMatchObject({ status: 400, code: 'event_invalid' });
      expect(await svc.deps.store.inbox.get(id)).toBeNull();
    } else {
      expect((await svc.deps.store.inbox.get(id))?.objectId).toBe(objectId);
    }
    expect(svc.lines.filter((l) => l.includes('"level":50'))).toEqual([]);
  });

  it("a signed final refund whose payment intent id is not one of Stripe's is read from Stripe, and applied", async () => {
    // The snapshot of a succeeded refund is applied without asking Stripe. This one named a payment intent id
    // longer than any of Stripe's, which PostgreSQL cannot index: applying it failed, and was retried for good.
    const refundId = `re_edgelongpi${randomBytes(6).toString('hex')}`;
    const id = `evt_edgelongpi${randomBytes(6).toString('hex')}`;
    const paymentIntent = `pi_${randomBytes(3_000).toString('base64url')}`.slice(0, 3_000);
    const res = await send(
      event({
        id,
        data: {
          object: {
            id: refundId,
            object: 'refund',
            amount: 100,
            currency: 'usd',
            metadata: {},
            payment_intent: paymentIntent,
            status: 'succeeded',
          },
        },
      }),
    );
    expect(res.status).toBe(200);
    await svc.deps.webhooks.idle();
    // Stripe knows no such refund: nothing to apply, and the event is done with.
    expect(await svc.deps.store.inbox.get(id)).toMatchObject({
      processedAt: expect.any(String),
      attempts: 0,
    });
    expect(await svc.deps.store.refunds.getByStripeId(refundId)).toBeNull();
  });

  it.each([
    ['its type', { type: `x.${'é'.repeat(200)}` }],
    ['its id', { id: `evt_${'é'.repeat(200)}` }],
  ])(
    'a signed event with 255 characters or fewer but more than 255 bytes in %s → 400 event_invalid',
    async (_what, over) => {
      // The type is the routing key and the id the message id of its stripe.events message: AMQP short strings of
      // at most 255 bytes. Stored, the event's message could never be published (the relay tried it again for good,
      // every try failing with its publish channel closed).
      const body = event(over);
      const res = await send(body);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ status: 400, code: 'event_invalid' });
      expect(await svc.deps.store.inbox.get((JSON.parse(body) as { id: string }).id)).toBeNull();
    },
  );

  it('an ordinary signed event is still accepted', async () => {
    const res = await send(event({}));
    expect(res.status).toBe(200);
  });

  it.each(['GET', 'PUT', 'DELETE', 'PATCH'])('%s /webhook → 405 with Allow: POST', async (method) => {
    const res = await fetch(`${svc.url}/webhook`, { method });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });
});
