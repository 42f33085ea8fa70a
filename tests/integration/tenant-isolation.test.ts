/**
 * Tenant isolation with API keys on, attacked from angles the other owner tests leave out: identifiers two owners
 * share (Idempotency-Key, refund request_id, the request_id an Idempotency-Key stands for), another owner's ids on
 * every operation compared with an unknown id (status, body and headers, also while Stripe fails), and key
 * variants that must never authenticate.
 */
import { describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { getJson, paidIntent, payOnHostedPage, postJson } from '../helpers/http.js';
import { auth, useOwnerRig } from '../helpers/owner-rig.js';
import { sendRaw } from '../helpers/raw-http.js';
import type { Db } from '../helpers/service.js';
import { postgresAvailable } from '../helpers/services.js';

const dbs: Db[] = (await postgresAvailable()) ? ['sqlite', 'postgres'] : ['sqlite'];

const CHECKOUT = {
  line_items: [
    { price_data: { currency: 'usd', product_data: { name: 'T' }, unit_amount: 500 }, quantity: 1 },
  ],
  success_url: 'https://shop.example.com/ok',
  cancel_url: 'https://shop.example.com/no',
};

/** An answer with what differs per request (its request id, the date) taken out. */
function comparable(res: { status: number; headers: Headers; json: Record<string, unknown> }) {
  const headers = Object.fromEntries(
    [...res.headers].filter(
      ([name]) => !['date', 'x-request-id', 'content-length', 'ratelimit'].includes(name),
    ),
  );
  return { status: res.status, headers, body: { ...res.json, request_id: 0, instance: 0 } };
}

/**
 * The Stripe calls (method and route, sorted: some are made at once) the service made while `fn` ran, from the
 * sandbox's request log.
 */
async function stripeCallsDuring(stripeBase: string, fn: () => Promise<unknown>): Promise<string[]> {
  type Captured = { requestId: string; method: string; route: string | null };
  const log = async () => {
    const res = await fetch(`${stripeBase}/_sandbox/requests`);
    return ((await res.json()) as { data: Captured[] }).data;
  };
  const marker = (await log()).at(-1)?.requestId;
  await fn();
  const after = await log();
  const since = after.slice(after.findIndex((c) => c.requestId === marker) + 1);
  return since.map((c) => `${c.method} ${c.route}`).sort();
}

describe.each(dbs)('tenant isolation (%s, API keys on)', (db) => {
  const rig = useOwnerRig(db, { AUTH_FAILURES_PER_MINUTE: '1000' });

  describe('identifiers two owners share', () => {
    it("the same Idempotency-Key on POST /refund: rival naming shop's intent gets 404, never shop's kept answer", async () => {
      const { svc, keys } = rig;
      const pi = await paidIntent(svc.url, 3000, { headers: auth(keys.shop!) });
      const headers = (key: string) => ({ ...auth(key), 'idempotency-key': 'refund-shared-1' });
      const mine = await postJson(
        `${svc.url}/refund`,
        { payment_intent_id: pi, amount: 300 },
        headers(keys.shop!),
      );
      expect(mine.status).toBe(200);
      const theirs = await postJson(
        `${svc.url}/refund`,
        { payment_intent_id: pi, amount: 300 },
        headers(keys.rival!),
      );
      expect(theirs.status).toBe(404);
      expect(theirs.headers.get('idempotent-replayed')).toBeNull();
      // The request_id the key stood for is shop's alone.
      const rid = mine.json.request_id as string;
      expect((await getJson(`${svc.url}/refund-status/${rid}`, auth(keys.shop!))).status).toBe(200);
      expect((await getJson(`${svc.url}/refund-status/${rid}`, auth(keys.rival!))).status).toBe(404);
      const refunds = await svc.deps.stripe.refunds.list({ payment_intent: pi });
      expect(refunds.data.map((r) => r.amount)).toEqual([300]);
    });

    it('the same Idempotency-Key on POST /refund-async, each on its own intent: two refunds, one each', async () => {
      const { svc, keys } = rig;
      const a = await paidIntent(svc.url, 3000, { headers: auth(keys.shop!) });
      const b = await paidIntent(svc.url, 3000, { headers: auth(keys.rival!) });
      const h = (key: string) => ({ ...auth(key), 'idempotency-key': 'async-shared-1' });
      const ra = await postJson(
        `${svc.url}/refund-async`,
        { payment_intent_id: a, amount: 100 },
        h(keys.shop!),
      );
      const rb = await postJson(
        `${svc.url}/refund-async`,
        { payment_intent_id: b, amount: 200 },
        h(keys.rival!),
      );
      expect(ra.status).toBe(202);
      expect(rb.status).toBe(202);
      expect(rb.headers.get('idempotent-replayed')).toBeNull();
      const sa = await getJson(`${svc.url}/refund-status/${ra.json.request_id as string}`, auth(keys.shop!));
      const sb = await getJson(`${svc.url}/refund-status/${rb.json.request_id as string}`, auth(keys.rival!));
      expect(sa.json.amount).toBe(100);
      expect(sb.json.amount).toBe(200);
    });

    it("rival's POST /refund-async naming shop's intent and shop's request_id is 404 and changes nothing of shop's", async () => {
      const { svc, keys } = rig;
      const pi = await paidIntent(svc.url, 3000, { headers: auth(keys.shop!) });
      const queued = await postJson(
        `${svc.url}/refund-async`,
        { payment_intent_id: pi, amount: 100, request_id: 'order-77' },
        auth(keys.shop!),
      );
      expect(queued.status).toBe(202);
      const before = await getJson(`${svc.url}/refund-status/order-77`, auth(keys.shop!));
      for (const path of ['/refund-async', '/refund']) {
        const steal = await postJson(
          `${svc.url}${path}`,
          { payment_intent_id: pi, amount: 100, request_id: 'order-77' },
          auth(keys.rival!),
        );
        expect(steal.status, path).toBe(404);
        // The same body with the same request_id, different amount.
        const other = await postJson(
          `${svc.url}${path}`,
          { payment_intent_id: pi, amount: 2900, request_id: 'order-77' },
          auth(keys.rival!),
        );
        expect(other.status, path).toBe(404);
      }
      expect((await getJson(`${svc.url}/refund-status/order-77`, auth(keys.rival!))).status).toBe(404);
      const after = await getJson(`${svc.url}/refund-status/order-77`, auth(keys.shop!));
      // Shop's refund is as shop asked it (the worker may have moved its status and refund_id on since).
      const asked = (json: Record<string, unknown>) => ({
        amount: json.amount,
        currency: json.currency,
        payment_intent_id: json.payment_intent_id,
        request_id: json.request_id,
        created_at: json.created_at,
      });
      expect(asked(after.json)).toEqual(asked(before.json));
      expect(
        (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data.map((r) => r.amount),
      ).not.toContain(2900);
    });

    it('the same Idempotency-Key on POST /create-checkout-session: rival gets its own session', async () => {
      const { svc, keys } = rig;
      const h = (key: string) => ({ ...auth(key), 'idempotency-key': 'cs-shared-1' });
      const a = await postJson(`${svc.url}/create-checkout-session`, CHECKOUT, h(keys.shop!));
      const b = await postJson(`${svc.url}/create-checkout-session`, CHECKOUT, h(keys.rival!));
      expect(a.status).toBe(200);
      expect(b.status).toBe(200);
      expect(b.headers.get('idempotent-replayed')).toBeNull();
      expect(b.json.id).not.toBe(a.json.id);
      expect(
        (await getJson(`${svc.url}/checkout-session?session_id=${a.json.id as string}`, auth(keys.rival!)))
          .status,
      ).toBe(404);
      expect(
        (await getJson(`${svc.url}/checkout-session?session_id=${b.json.id as string}`, auth(keys.rival!)))
          .status,
      ).toBe(200);
    });
  });

  describe("another owner's ids answer as unknown ones", () => {
    it('status, body and headers, on every operation that takes an id', async () => {
      const { svc, keys } = rig;
      const pi = await paidIntent(svc.url, 3000, { headers: auth(keys.shop!) });
      const cs = await postJson(`${svc.url}/create-checkout-session`, CHECKOUT, auth(keys.shop!));
      await postJson(
        `${svc.url}/refund-async`,
        { payment_intent_id: pi, amount: 100, request_id: 'r-1' },
        auth(keys.shop!),
      );
      // A paid checkout session, and its intent, which shop reads through the session (no webhooks here).
      const paidCs = await postJson(`${svc.url}/create-checkout-session`, CHECKOUT, auth(keys.shop!));
      expect((await payOnHostedPage(paidCs.json.url as string)).status).toBe(303);
      const read = await getJson(
        `${svc.url}/checkout-session?session_id=${paidCs.json.id as string}`,
        auth(keys.shop!),
      );
      expect(read.json.payment_status).toBe('paid');
      const sessionPi = read.json.payment_intent as string;
      expect((await getJson(`${svc.url}/payment-intent/${sessionPi}`, auth(keys.shop!))).status).toBe(200);

      const probes = (ids: { pi: string; cs: string; rid: string }) => [
        () => getJson(`${svc.url}/payment-intent/${ids.pi}`, auth(keys.rival!)),
        () => getJson(`${svc.url}/checkout-session?session_id=${ids.cs}`, auth(keys.rival!)),
        () => getJson(`${svc.url}/refund-status/${ids.rid}`, auth(keys.rival!)),
        () => postJson(`${svc.url}/refund`, { payment_intent_id: ids.pi }, auth(keys.rival!)),
        () => postJson(`${svc.url}/refund-async`, { payment_intent_id: ids.pi }, auth(keys.rival!)),
      ];
      const unknown = probes({
        pi: 'pi_neverexisted0000000000',
        cs: 'cs_test_neverexisted000000',
        rid: 'r-nope',
      });
      for (const theirs of [
        probes({ pi, cs: cs.json.id as string, rid: 'r-1' }),
        probes({ pi: sessionPi, cs: paidCs.json.id as string, rid: 'r-1' }),
      ]) {
        for (const faults of [{}, { error_rate: 1 }]) {
          await rig.stripe.faults(faults);
          try {
            for (let i = 0; i < theirs.length; i++) {
              let t: ReturnType<typeof comparable> | undefined;
              let u: ReturnType<typeof comparable> | undefined;
              const theirCalls = await stripeCallsDuring(
                rig.stripe.env.STRIPE_API_BASE,
                async () => (t = comparable(await theirs[i]!())),
              );
              const unknownCalls = await stripeCallsDuring(
                rig.stripe.env.STRIPE_API_BASE,
                async () => (u = comparable(await unknown[i]!())),
              );
              const what = `probe ${i} with faults ${JSON.stringify(faults)}`;
              expect(t, what).toEqual(u);
              expect(theirCalls, what).toEqual(unknownCalls);
              // An unknown intent is asked of Stripe (the log works): so is another owner's.
              if (i === 0) expect(unknownCalls.length, what).toBeGreaterThan(0);
            }
          } finally {
            await rig.stripe.faults({});
          }
        }
      }
      // Nothing of shop's was refunded by any of it.
      for (const id of [pi, sessionPi]) {
        const refunds = await svc.deps.stripe.refunds.list({ payment_intent: id });
        expect(
          refunds.data.map((r) => r.amount),
          id,
        ).toEqual(id === pi ? [100] : []);
      }
    });
  });

  describe('keys that must not authenticate', () => {
    it('key variants, places and sizes', async () => {
      const { svc, keys } = rig;
      const key = keys.shop!;
      const revoked = await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' });
      await svc.deps.store.apiKeys.revoke(revoked.record.id);
      const url = `${svc.url}/refund-status/anything`;
      const variants: Record<string, Record<string, string>> = {
        'lower-cased': auth(key.toLowerCase()),
        'upper-cased': auth(key.toUpperCase()),
        'one more character': auth(`${key}A`),
        'one less character': auth(key.slice(0, -1)),
        'Basic with the key as user': { authorization: `Basic ${Buffer.from(`${key}:`).toString('base64')}` },
        'Basic with the key as password': {
          authorization: `Basic ${Buffer.from(`:${key}`).toString('base64')}`,
        },
        'the key alone': { authorization: key },
        'Token scheme': { authorization: `Token ${key}` },
        'x-api-key': { 'x-api-key': key },
        'very long': auth(`psk_${'A'.repeat(8000)}`),
        revoked: auth(revoked.key),
        'two keys in one field': { authorization: `Bearer ${key}, Bearer ${key}` },
        'key then comma': { authorization: `Bearer ${key},` },
      };
      for (const [name, headers] of Object.entries(variants)) {
        const res = await getJson(url, headers);
        expect(res.status, name).toBe(401);
      }
      for (const q of [`api_key=${key}`, `key=${key}`, `access_token=${key}`]) {
        expect((await getJson(`${url}?${q}`)).status, q).toBe(401);
      }
      // A NUL byte or tab in the key, on the wire (fetch refuses to send such a header).
      for (const bad of [`${key}\x00`, `${key}\tx`, `${key.slice(0, 10)}\x00${key.slice(10)}`]) {
        const answer = await sendRaw(
          svc.url,
          `GET /refund-status/anything HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${bad}\r\nConnection: close\r\n\r\n`,
        );
        expect(answer, JSON.stringify(bad)).toMatch(/^HTTP\/1\.1 (400|401) /);
      }
      // And the real key still works.
      expect((await getJson(url, auth(key))).status).toBe(404);
    });
  });
});
