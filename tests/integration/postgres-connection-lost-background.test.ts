/**
 * The server ends the worker's, the outbox relay's or the sweep's PostgreSQL sessions (a failover, an operator's
 * pg_terminate_backend, a restart). The database being away for a while is not the refund's fault: the process
 * stays up, every accepted refund is made at Stripe once and recorded once, and no outcome says `failed` for a
 * refund Stripe made. Each test holds a row lock from a session of its own so that a statement of the service is
 * in flight when its session is ended, and ends only sessions with this file's application_name.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { gateRefundCreate } from '../helpers/stripe-gate.js';
import { POSTGRES_URL, RABBITMQ_URL, postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import { requeueStuck } from '../../src/service.js';
import { StoreUnavailableError } from '../../src/store/index.js';
import { peekRabbit, startStripe, uniqueTag, type StripeStandIn } from '../async/support/harness.js';

const pgOk = await postgresAvailable();
/** The in-process queue (ROLE=all, embedded), and RabbitMQ under a queue prefix of this file's own. */
const brokers = ['memory', ...(pgOk && (await rabbitAvailable()) ? (['rabbitmq'] as const) : [])];

interface Outcome {
  request_id: string;
  status: string;
  refund_id: string | null;
}

describe.skipIf(!pgOk).each(brokers)(
  'PostgreSQL ending the background parts’ sessions (%s queue)',
  (broker) => {
    const appName = `bglost_${randomBytes(4).toString('hex')}`;
    let svc: TestService;
    let stripe: StripeStandIn;
    let admin: pg.Client;
    let schema: string;

    /** A session of the test's own with a transaction open in the service's schema. */
    async function lockHolder(): Promise<pg.Client> {
      const holder = new pg.Client({ connectionString: POSTGRES_URL });
      await holder.connect();
      await holder.query(`SET search_path TO "${schema}"`);
      await holder.query('BEGIN');
      return holder;
    }

    /** The service's sessions waiting for a lock (so one of its statements is in flight). */
    async function waitingSessions(): Promise<number[]> {
      const rows = await eventually(
        async () =>
          (
            await admin.query(
              "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
              [appName],
            )
          ).rows as { pid: number }[],
        (r) => r.length > 0,
        10_000,
      );
      return rows.map((r) => r.pid);
    }

    /** Ends those sessions and waits until they are gone (an ended backend lingers in pg_stat_activity a moment). */
    async function terminate(pids: readonly number[]): Promise<void> {
      for (const pid of pids) await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      await eventually(
        async () =>
          (await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = ANY($1)', [pids])).rowCount,
        (n) => n === 0,
        5_000,
      );
    }

    /** Every outcome message the service wrote for `requestIds` (its outbox keeps them, sent or not). */
    async function outcomes(...requestIds: string[]): Promise<{ outcome: Outcome; sent: boolean }[]> {
      const wanted = new Set(requestIds);
      const rows = await svc.sql(
        `SELECT payload, sent_at FROM outbox WHERE destination = '${svc.deps.topology.responses}' ORDER BY id`,
      );
      return rows
        .map((r) => ({ outcome: JSON.parse(String(r['payload'])) as Outcome, sent: r['sent_at'] !== null }))
        .filter((o) => wanted.has(o.outcome.request_id));
    }

    beforeAll(async () => {
      const url = new URL(POSTGRES_URL);
      url.searchParams.set('application_name', appName);
      // A Stripe of the test's own that sends the service no webhooks: what the ledger and the outcomes say comes
      // from the background parts alone (webhooks may be late, or not configured).
      stripe = await startStripe();
      svc = await startTestService('postgres', {
        DATABASE_URL: url.toString(),
        STRIPE_SECRET_KEY: stripe.secretKey,
        STRIPE_API_BASE: stripe.url,
        STRIPE_MAX_NETWORK_RETRIES: '0',
        API_AUTH: 'off',
        ...(broker === 'rabbitmq' ? { RABBITMQ_URL, QUEUE_PREFIX: uniqueTag('bglost') } : {}),
      });
      admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      schema = String((await svc.sql('SELECT current_schema() AS s'))[0]!['s']);
    });
    afterAll(async () => {
      await admin?.end();
      await svc?.stop();
      await stripe?.close();
      if (broker === 'rabbitmq' && svc) {
        const peek = await peekRabbit();
        await peek.deleteAll(svc.deps.topology);
        await peek.close();
      }
    });

    it('a worker whose sessions keep being ended after Stripe made the refund records it, never failed', async () => {
      const pi = await paidIntent(svc.url, 5000);
      const requestId = `bg-worker-${randomBytes(4).toString('hex')}`;
      const gate = gateRefundCreate(svc.deps.stripe);
      const holder = await lockHolder();
      let ended = 0;
      try {
        const res = await postJson(`${svc.url}/refund-async`, {
          payment_intent_id: pi,
          amount: 700,
          request_id: requestId,
        });
        expect(res.status).toBe(202);
        await gate.entered; // the worker is at Stripe; its answer will wait for the refund row
        await holder.query('SELECT 1 FROM refunds WHERE request_id = $1 FOR UPDATE', [requestId]);
        gate.release();
        // The database keeps failing the refund for a while (about 8 s on the code before the fix): each time the
        // worker comes back to it, its session is ended again, more often than the broker's delivery limit (5)
        // lets a message fail. Then the database is well again.
        for (; ended < 7; ended++) await terminate(await waitingSessions());
      } finally {
        await holder.query('ROLLBACK').catch(() => undefined);
        await holder.end();
        gate.restore();
      }

      const stripeRefunds = (await svc.deps.stripe.refunds.list({ payment_intent: pi })).data;
      expect(stripeRefunds).toHaveLength(1);
      const read = await eventually(
        () => getJson(`${svc.url}/refund-status/${requestId}`),
        (r) => r.json.status !== 'processing' && r.json.status !== 'queued',
        15_000,
      );
      expect(read.json).toMatchObject({ status: 'succeeded', refund_id: stripeRefunds[0]!.id });
      // Every outcome written says what Stripe did, and each leaves the outbox.
      const written = await eventually(
        () => outcomes(requestId),
        (list) => list.length > 0 && list.every((o) => o.sent),
        15_000,
      );
      expect(written.map((o) => o.outcome.status)).toEqual(['succeeded']);
      expect(written.every((o) => o.sent)).toBe(true);
    });

    it('a session ended under a statement is not handed out again: the next statement works', async () => {
      const pi = await paidIntent(svc.url, 5000);
      const holder = await lockHolder();
      let outcome: { failed: unknown; next: unknown };
      try {
        await holder.query('SELECT 1 FROM payments WHERE id = $1 FOR UPDATE', [pi]);
        // One statement, as most of the worker's steps are (beginAttempt, recording Stripe's answer), and right
        // after its failure the next one, as the worker's or the next request's.
        const settled = svc.deps.store.payments.update(pi, { metadata: { touched: 'yes' } }).then(
          () => ({ failed: undefined, next: undefined }),
          async (failed: unknown) => ({
            failed,
            next: await svc.deps.store.ping().then(
              () => 'answered',
              (err: unknown) => err,
            ),
          }),
        );
        const pids = await waitingSessions();
        for (const pid of pids) await admin.query('SELECT pg_terminate_backend($1)', [pid]);
        outcome = await settled;
      } finally {
        await holder.query('ROLLBACK').catch(() => undefined);
        await holder.end();
      }
      expect(outcome.failed).toBeInstanceOf(StoreUnavailableError);
      expect(outcome.next).toBe('answered');
    });

    it('the outbox relay whose claim is cut off logs it and keeps publishing', async () => {
      const messageId = `bg-relay-${randomBytes(4).toString('hex')}`;
      const from = svc.lines.length;
      const holder = await lockHolder();
      try {
        // The relay's next claim waits for the table with its statement running; the row it is to take is
        // written under the same lock, so it is there once the lock is gone.
        await holder.query('LOCK TABLE outbox IN EXCLUSIVE MODE');
        await holder.query(
          `INSERT INTO outbox (destination, routing_key, message_id, payload, created_at, available_at)
         VALUES ($1, $1, $2, '{"probe":true}', now(), now())`,
          [svc.deps.topology.responses, messageId],
        );
        await terminate(await waitingSessions());
      } finally {
        await holder.query('COMMIT').catch(() => undefined);
        await holder.end();
      }
      const sent = await eventually(
        () => svc.sql(`SELECT sent_at FROM outbox WHERE message_id = '${messageId}'`),
        (rows) => rows[0]?.['sent_at'] != null,
        10_000,
      );
      expect(sent[0]?.['sent_at']).not.toBeNull();
      // The database away is a dependency's outage, logged each round as a warning (as the 503s of requests are
      // meanwhile), not as an error of the service's own.
      const failed = svc.lines
        .slice(from)
        .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { type?: string } })
        .filter((l) => l.msg === 'outbox relay batch failed');
      expect(failed.map((l) => [l.level, l.err?.type])).toContainEqual([40, 'StoreUnavailableError']);
      expect(failed.filter((l) => l.level >= 50)).toEqual([]);
    });

    it('the outbox relay whose "sent" is cut off marks the row sent soon after, without publishing it again', async () => {
      const messageId = `bg-mark-${randomBytes(4).toString('hex')}`;
      const broker = svc.deps.broker;
      const publish = broker.publish.bind(broker);
      let published = 0;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let markEntered!: () => void;
      const entered = new Promise<void>((resolve) => (markEntered = resolve));
      broker.publish = async (dest, body, opts) => {
        if (opts.messageId === messageId) {
          published++;
          markEntered();
          await gate;
        }
        return publish(dest, body, opts);
      };
      const holder = await lockHolder();
      try {
        await svc.sql(
          `INSERT INTO outbox (destination, routing_key, message_id, payload, created_at, available_at)
         VALUES ('${svc.deps.topology.responses}', '${svc.deps.topology.responses}', '${messageId}', '{"probe":true}',
           now(), now())`,
        );
        svc.deps.relay.notify();
        await entered; // claimed and being published; its "sent" will wait for the row
        await holder.query('SELECT 1 FROM outbox WHERE message_id = $1 FOR UPDATE', [messageId]);
        release();
        await terminate(await waitingSessions());
      } finally {
        release();
        await holder.query('ROLLBACK').catch(() => undefined);
        await holder.end();
      }
      try {
        // Well before the claim's lease (15 s) would hand the row out again.
        const sent = await eventually(
          () => svc.sql(`SELECT sent_at FROM outbox WHERE message_id = '${messageId}'`),
          (rows) => rows[0]?.['sent_at'] != null,
          5_000,
        );
        expect(sent[0]?.['sent_at']).not.toBeNull();
        expect(published).toBe(1);
      } finally {
        broker.publish = publish;
      }
    });

    it('a batch whose failed publish cannot be recorded still marks its published rows sent, without publishing them again', async () => {
      const tag = randomBytes(4).toString('hex');
      const good = `bg-good-${tag}`;
      const refused = `bg-refused-${tag}`;
      const broker = svc.deps.broker;
      const publish = broker.publish.bind(broker);
      let published = 0;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let refusedEntered!: () => void;
      const entered = new Promise<void>((resolve) => (refusedEntered = resolve));
      broker.publish = async (dest, body, opts) => {
        if (opts.messageId === good) published++;
        if (opts.messageId === refused) {
          refusedEntered();
          await gate;
        }
        return publish(dest, body, opts);
      };
      const holder = await lockHolder();
      try {
        // One claim takes both: one for the responses queue, one for a queue that does not exist (unroutable).
        await svc.sql(
          `INSERT INTO outbox (destination, routing_key, message_id, payload, created_at, available_at)
         VALUES ('${svc.deps.topology.responses}', '${svc.deps.topology.responses}', '${good}', '{"probe":true}',
           now(), now()),
           ('${svc.deps.topology.responses}.missing-${tag}', '', '${refused}', '{"probe":true}', now(), now())`,
        );
        svc.deps.relay.notify();
        await entered;
        // Recording the refused publish (its next try) waits for its row, and its session is ended meanwhile.
        await holder.query('SELECT 1 FROM outbox WHERE message_id = $1 FOR UPDATE', [refused]);
        release();
        await terminate(await waitingSessions());
      } finally {
        release();
        await holder.query('ROLLBACK').catch(() => undefined);
        await holder.end();
      }
      try {
        // Well before the claim's lease (15 s) would hand the published row out again.
        const sent = await eventually(
          () => svc.sql(`SELECT sent_at FROM outbox WHERE message_id = '${good}'`),
          (rows) => rows[0]?.['sent_at'] != null,
          5_000,
        );
        expect(sent[0]?.['sent_at']).not.toBeNull();
        expect(published).toBe(1);
      } finally {
        broker.publish = publish;
        await svc.sql(`DELETE FROM outbox WHERE message_id = '${refused}'`);
      }
    });

    it('a sweep cut off half way re-queues nothing twice, and the next sweep finishes the refund once', async () => {
      const pi = await paidIntent(svc.url, 5000);
      const requestId = `bg-sweep-${randomBytes(4).toString('hex')}`;
      // A refund whose message is gone (say, dead-lettered while the ledger could not be told): queued, untouched
      // for two minutes. Written directly, with no outbox row, so only the sweep can move it: the test's sweeps (one
      // minute) see it stale, the service's own (every 6 s here, ten minutes) do not, and cannot take it first.
      await svc.sql(
        `INSERT INTO refunds (request_id, owner, payment_intent_id, amount, currency, reason, status, attempts, mode,
         request_hash, metadata, created_at, updated_at)
       VALUES ('${requestId}', '', '${pi}', 900, 'usd', NULL, 'queued', 0, 'async', 'x', '{}',
         now() - interval '2 minutes', now() - interval '2 minutes')`,
      );
      const holder = await lockHolder();
      let first: unknown;
      try {
        await holder.query('SELECT 1 FROM refunds WHERE request_id = $1 FOR UPDATE', [requestId]);
        const sweeping = requeueStuck(svc.deps, 60_000).then(
          (n) => n,
          (err: unknown) => err,
        );
        await terminate(await waitingSessions());
        first = await sweeping;
      } finally {
        await holder.query('ROLLBACK').catch(() => undefined);
        await holder.end();
      }
      expect(first).toBeInstanceOf(StoreUnavailableError);
      // Its transaction (outbox row and touch) rolled back: nothing was queued for the refund.
      const queued = await svc.sql(
        `SELECT count(*)::int AS n FROM outbox WHERE payload LIKE '%${requestId}%' AND destination = '${svc.deps.topology.requests}'`,
      );
      expect(queued[0]?.['n']).toBe(0);
      expect(await requeueStuck(svc.deps, 60_000)).toBe(1);
      svc.deps.relay.notify();
      const read = await eventually(
        () => getJson(`${svc.url}/refund-status/${requestId}`),
        (r) => r.json.status === 'succeeded',
        10_000,
      );
      expect(read.json.status).toBe('succeeded');
      expect((await svc.deps.stripe.refunds.list({ payment_intent: pi })).data).toHaveLength(1);
    });

    it('sessions ended every 250 ms during a burst of POST /refund-async: each accepted refund is made once', async () => {
      const intents = await Promise.all(Array.from({ length: 20 }, () => paidIntent(svc.url, 5000)));
      const orders = intents.flatMap((pi, i) =>
        Array.from({ length: 10 }, (_, j) => ({
          payment_intent_id: pi,
          amount: 300,
          request_id: `bg-burst-${i}-${j}-${randomBytes(3).toString('hex')}`,
        })),
      );
      let burstDone = false;
      let ended = 0;
      const chaos = (async () => {
        const until = Date.now() + 3_000;
        while (!burstDone || Date.now() < until) {
          const r = await admin.query(
            'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
            [appName],
          );
          ended += r.rowCount ?? 0;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      })();
      // A client retries a 503 (the database went away under its request) until the refund is accepted.
      const answers = await Promise.all(
        orders.map(async (order, i) => {
          await new Promise((resolve) => setTimeout(resolve, i * 10));
          for (let tries = 1; ; tries++) {
            const res = await postJson(`${svc.url}/refund-async`, order);
            if (res.status !== 503 || tries >= 50) return res.status;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }),
      ).finally(() => (burstDone = true));
      await chaos;
      expect(ended).toBeGreaterThan(0);
      expect(answers.every((status) => status === 202)).toBe(true);

      const keys = orders.map((o) => o.request_id);
      const rows = await eventually(
        async () => Promise.all(keys.map((k) => svc.deps.store.refunds.get(k))),
        (list) => list.every((r) => r?.status === 'succeeded'),
        20_000,
      );
      expect(rows.filter((r) => r?.status !== 'succeeded').map((r) => [r?.requestId, r?.status])).toEqual([]);
      const atStripe = (
        await Promise.all(
          intents.map((pi) => svc.deps.stripe.refunds.list({ payment_intent: pi, limit: 100 })),
        )
      ).flatMap((list) => list.data.map((r) => r.metadata?.['request_id']));
      expect(atStripe.sort()).toEqual([...keys].sort());
      // Every refund's outcome left the outbox, and none says failed.
      const written = await eventually(
        () => outcomes(...keys),
        (list) => list.length >= keys.length && list.every((o) => o.sent),
        20_000,
      );
      expect(written.every((o) => o.sent)).toBe(true);
      expect(new Set(written.map((o) => o.outcome.request_id)).size).toBe(keys.length);
      expect(written.filter((o) => o.outcome.status !== 'succeeded')).toEqual([]);
      // 200 refunds, each retried through the outage, then two waits of up to 20 s each: on a loaded 2-core
      // machine this took 22-28 s and ran into the default 30 s, on the code before and after (2026-11-30).
    }, 90_000);
  },
);
