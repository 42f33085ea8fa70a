/**
 * POST /refund whose own Stripe call outlasts STRIPE_TIMEOUT_MS: the SDK gives up on the first try and retries under
 * the same idempotency key while Stripe is still making the refund for the first, so Stripe answers every retry
 * `idempotency_key_in_use`. No other attempt of the service holds the refund; the one request Stripe is still
 * running has nobody waiting for its answer. The service answers 409 refund_in_progress and hands the refund to the
 * worker, which asks Stripe again under the same key and records the refund Stripe made: without a webhook, without
 * any retry by the client, and long before the stuck-refund sweep (ten minutes). Before, nothing was handed over and
 * the refund stayed `processing` with no Stripe id until the client's retry took it over or the sweep queued it.
 *
 * The service runs with ROLE=all, on the in-process queue and on RabbitMQ, against a sandbox of the test's own that
 * sends it no webhooks (the embedded one would deliver the refund's events, which settle it without the worker).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import {
  eventually,
  startSharedStripe,
  startTestService,
  type Db,
  type SharedStripe,
  type TestService,
} from '../helpers/service.js';
import { postgresAvailable, RABBITMQ_URL, rabbitAvailable } from '../helpers/services.js';
import { deleteEverything, topologyFor, uniquePrefix } from '../queue/support/rabbit.js';

const pgOk = await postgresAvailable();
const rabbitOk = await rabbitAvailable();
const setups: { name: string; db: Db; rabbit: boolean }[] = [
  { name: 'SQLite, in-process queue', db: 'sqlite', rabbit: false },
  ...(pgOk ? [{ name: 'PostgreSQL, in-process queue', db: 'postgres' as const, rabbit: false }] : []),
  ...(pgOk && rabbitOk ? [{ name: 'PostgreSQL, RabbitMQ', db: 'postgres' as const, rabbit: true }] : []),
];

/** Stripe's answer to the first try comes this long after it: well past the service's timeout and the SDK's retries. */
const STRIPE_LATENCY_MS = 4_000;

describe.each(setups)('POST /refund whose own call Stripe is still making ($name)', ({ db, rabbit }) => {
  const prefix = uniquePrefix('keyinuse');
  let stripe: SharedStripe;
  let svc: TestService;
  beforeAll(async () => {
    stripe = await startSharedStripe();
    svc = await startTestService(
      db,
      {
        ...stripe.env,
        ...(rabbit && { RABBITMQ_URL }),
        API_AUTH: 'off',
        STRIPE_TIMEOUT_MS: '300',
        STRIPE_MAX_NETWORK_RETRIES: '2',
      },
      rabbit ? { topology: topologyFor(prefix) } : {},
    );
  });
  afterAll(async () => {
    await svc?.stop();
    await stripe?.close();
    if (rabbit) await deleteEverything(prefix);
  });

  it('answers 409 refund_in_progress and the worker records the one refund Stripe made', async () => {
    const pi = await paidIntent(svc.url, 5000);
    const requestId = `key-in-use-${randomBytes(4).toString('hex')}`;
    await stripe.faults({
      latency_ms: STRIPE_LATENCY_MS,
      match: { method: 'POST', path_prefix: '/v1/refunds' },
    });
    let res: Awaited<ReturnType<typeof postJson>>;
    try {
      res = await postJson(`${svc.url}/refund`, {
        payment_intent_id: pi,
        amount: 1000,
        request_id: requestId,
      });
      expect(res.status).toBe(409);
      expect(res.json.code).toBe('refund_in_progress');
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/);

      // No retry of the request and no webhook: the worker alone gets Stripe's refund into the ledger.
      const status = await eventually(
        () => getJson(`${svc.url}/refund-status/${requestId}`),
        (s) => (s.json as { status?: string }).status === 'succeeded',
        20_000,
      );
      expect(status.json).toMatchObject({ request_id: requestId, status: 'succeeded', amount: 1000 });
      const refundId = (status.json as { refund_id?: unknown }).refund_id;
      expect(refundId).toMatch(/^re_/);

      const atStripe = await svc.deps.stripe.refunds.list({ payment_intent: pi, limit: 100 });
      expect(atStripe.data.map((r) => ({ id: r.id, amount: r.amount }))).toEqual([
        { id: refundId, amount: 1000 },
      ]);
    } finally {
      await stripe.faults({});
    }
  }, 40_000);
});
