/**
 * Two built processes (ROLE=all) on one PostgreSQL schema, one RabbitMQ prefix and one Stripe stand-in. One is
 * paused (SIGSTOP: a debugger, a long stall, a frozen container) in the middle of a burst of POST /refund-async,
 * holding rows its relay was handed and messages its worker took, and resumed (SIGCONT) later. What it accepted
 * must not wait for it: the other process's relay publishes its rows once their leases end, and that process's
 * worker makes them. Once it resumes it goes on with what it held (publishing some rows again, making refunds the
 * other made already): every refund is still made exactly once at Stripe and every one ends succeeded.
 */
import pg from 'pg';
import { Agent } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POSTGRES_URL, postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import {
  buildIntoTemp,
  killAllBuilt,
  post,
  startBuilt,
  type Answer,
  type Build,
} from '../async/support/built.js';
import {
  clusterEnv,
  expectExactlyOnce,
  paidIntents,
  peekRabbit,
  pgSchema,
  prefixedTopology,
  sleep,
  startStripe,
  uniqueTag,
  type RabbitPeek,
  type StripeStandIn,
} from '../async/support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());
/** 202s from the process to pause before it is paused. */
const ACCEPTED_BEFORE_PAUSE = 120;
const AMOUNT = 10;
/** The relay's lease (15 s), plus the other relay's poll and slack. */
const TAKE_OVER_BUDGET_MS = 35_000;

describe.skipIf(!ready)(
  'multi-process: an API process paused mid-burst beside another (built, PostgreSQL)',
  () => {
    let build: Build;
    let stripe: StripeStandIn;
    let peek: RabbitPeek;

    beforeAll(async () => {
      build = await buildIntoTemp('sigstop-build-');
      stripe = await startStripe();
      peek = await peekRabbit();
    }, 120_000);

    afterAll(async () => {
      killAllBuilt();
      await peek?.close();
      await stripe?.close();
      build?.remove();
    });

    it('what it accepted is published and refunded by the other meanwhile, and every refund is made exactly once', async () => {
      const tag = uniqueTag('sigstop');
      const topology = prefixedTopology(tag);
      const schema = pgSchema(tag);
      await schema.create();
      const db = new pg.Client({ connectionString: POSTGRES_URL });
      await db.connect();
      const stops: (() => void)[] = [];
      try {
        const env = clusterEnv(stripe, schema, tag, { ROLE: 'all' });
        const paused = await startBuilt(build.main, env);
        stops.push(() => paused.signal('SIGKILL'));
        const other = await startBuilt(build.main, env);
        stops.push(() => other.signal('SIGKILL'));
        const intents = await paidIntents(paused.url, 10, 100_000);
        const body = (key: string, i: number) => ({
          request_id: key,
          payment_intent_id: intents[i % intents.length],
          amount: AMOUNT,
        });
        const unsentOutbox = async () =>
          Number(
            (await db.query(`select count(*) as n from "${schema.schema}".outbox where sent_at is null`))
              .rows[0].n,
          );
        const statuses = async (keys: readonly string[]) => {
          const { rows } = await db.query<{ request_id: string; status: string }>(
            `select request_id, status from "${schema.schema}".refunds where request_id = any($1)`,
            [keys],
          );
          return new Map(rows.map((r) => [r.request_id, r.status]));
        };

        // 1. A burst at the one to pause, paused once it has accepted ACCEPTED_BEFORE_PAUSE.
        const agent = new Agent({ keepAlive: true, maxSockets: 8 });
        const results: (Answer & { key: string; i: number })[] = [];
        let accepted = 0;
        let sending = true;
        let n = 0;
        let pausedAt = 0;
        const senders = Array.from({ length: 8 }, async () => {
          while (sending && !pausedAt) {
            const i = n++;
            const key = `${tag}-${i}`;
            const answer = await post(`${paused.url}/refund-async`, body(key, i), agent, 5_000);
            results.push({ key, i, ...answer });
            if (answer.status === 202) accepted++;
            if (!pausedAt && accepted >= ACCEPTED_BEFORE_PAUSE) pausedAt = paused.signal('SIGSTOP');
          }
        });
        const began = Date.now();
        while (!pausedAt && Date.now() - began < 20_000) await sleep(5);
        if (!pausedAt) pausedAt = paused.signal('SIGSTOP');
        sending = false;
        await Promise.all(senders); // those in flight at the pause give up after 5 s
        agent.destroy();
        expect(
          results.filter((r) => !r.error && r.status !== 202).map((r) => `${r.status} ${r.body}`),
        ).toEqual([]);
        const ok = results.filter((r) => r.status === 202);
        expect(ok.length).toBeGreaterThanOrEqual(ACCEPTED_BEFORE_PAUSE);

        // 2. While it is paused: requests cut off are retried at the other (one row each), and more arrive there.
        const cutOff = results.filter((r) => r.error);
        const more = Array.from({ length: 40 }, (_, k) => ({ key: `${tag}-b${k}`, i: k }));
        const atOther = await Promise.all(
          [...cutOff, ...more].map((r) => post(`${other.url}/refund-async`, body(r.key, r.i), false, 10_000)),
        );
        expect(atOther.filter((a) => a.status !== 202).map((a) => `${a.status} ${a.body}`)).toEqual([]);
        const keys = [...ok, ...cutOff, ...more].map((r) => r.key);

        // Every row the paused relay held is published by the other once its lease has run out: none waits for it.
        let unsent = await unsentOutbox();
        while (unsent > 0 && Date.now() - pausedAt < TAKE_OVER_BUDGET_MS) {
          await sleep(200);
          unsent = await unsentOutbox();
        }
        expect(unsent, 'outbox rows left waiting for the paused process').toBe(0);
        // And made, but for the refunds whose messages its worker had taken (unacknowledged, they stay with it).
        const whilePaused = await statuses(keys);
        const finished = [...whilePaused.values()].filter((s) => s === 'succeeded').length;

        // 3. It resumes: every refund ends succeeded, each made once at Stripe.
        paused.signal('SIGCONT');
        const resumedAt = Date.now();
        let final = await statuses(keys);
        while ([...final.values()].some((s) => s !== 'succeeded') && Date.now() - resumedAt < 30_000) {
          await sleep(200);
          final = await statuses(keys);
        }
        expect(keys.filter((k) => final.get(k) !== 'succeeded')).toEqual([]);
        await expectExactlyOnce(stripe, keys, AMOUNT);

        // 4. Both stop cleanly.
        paused.signal('SIGTERM');
        other.signal('SIGTERM');
        expect((await paused.exited).code).toBe(0);
        expect((await other.exited).code).toBe(0);
        console.info(
          `[sigstop] ${ok.length} accepted before the pause, ${cutOff.length} cut off and retried at the other, ` +
            `${more.length} more there; ${finished} of ${keys.length} succeeded while it was paused`,
        );
      } finally {
        for (const stop of stops) stop();
        await db.end().catch(() => undefined);
        await peek.deleteAll(topology).catch(() => undefined);
        await schema.drop().catch(() => undefined);
      }
    }, 150_000);
  },
);
