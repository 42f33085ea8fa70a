/**
 * Done-when 2: RabbitMQ stopped and started again (`rabbitmqctl stop_app` / `start_app`) while refund
 * requests keep coming. The API keeps answering 202 (the requests wait in the outbox), the relay and
 * the worker reconnect and re-declare their topology, and every accepted refund ends refunded once.
 *
 * This file stops the shared broker, so it lives in the `disruptive` vitest project, which runs only
 * after every other test file has finished (vitest.config.ts). It always starts RabbitMQ again.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import {
  clusterEnv,
  countsOf,
  expectExactlyOnce,
  paidIntents,
  peekRabbit,
  pgSchema,
  postRefundAsync,
  prefixedTopology,
  retryQueues,
  sleep,
  startInProcess,
  startStripe,
  uniqueTag,
  waitFor,
  type InProcessService,
  type PgSchema,
  type StripeStandIn,
} from './support/harness.js';

const run = promisify(execFile);
const rabbitmqctl = (...args: string[]) => run('rabbitmqctl', ['-q', ...args], { timeout: 120_000 });

async function ctlUsable(): Promise<boolean> {
  try {
    await rabbitmqctl('status');
    return true;
  } catch (err) {
    const message = `rabbitmqctl cannot control the local broker: ${(err as Error).message}`;
    if (process.env.CI) throw new Error(`${message}; CI requires it`);
    console.warn(`\n!!! SKIPPING the RabbitMQ restart test: ${message} !!!\n`);
    return false;
  }
}

/** Starts the app if it is stopped and waits until it accepts work again. */
async function restoreRabbit(): Promise<void> {
  await rabbitmqctl('start_app');
  await rabbitmqctl('await_startup', '--timeout', '120');
}

const ready = (await rabbitAvailable()) && (await postgresAvailable()) && (await ctlUsable());

describe.skipIf(!ready)('RabbitMQ restarted during a stream of refund requests', () => {
  const tag = uniqueTag('restart');
  const topology = prefixedTopology(tag);
  let stripe: StripeStandIn;
  let db: PgSchema;
  let svc: InProcessService;

  beforeAll(async () => {
    stripe = await startStripe();
    db = pgSchema(tag);
    svc = await startInProcess({ env: clusterEnv(stripe, db, tag, { ROLE: 'all' }), db, topology });
  });

  afterAll(async () => {
    await restoreRabbit();
    await svc?.close();
    const peek = await peekRabbit();
    await peek.deleteAll(topology);
    await peek.close();
    await db?.drop();
    await stripe?.close();
  });

  it('every 202 ends refunded exactly once', async () => {
    const intents = await paidIntents(svc.url, 20, 100_000);
    // Slow enough at Stripe that refunds are in flight when the broker goes away.
    await stripe.faults({ latency_ms: 30, match: { method: 'POST', path_prefix: '/v1/refunds' } });

    const accepted: string[] = [];
    const duringOutage: string[] = [];
    let outage = false;
    let streaming = true;
    let n = 0;
    const stream = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (streaming) {
          const i = n++;
          const answer = await postRefundAsync(svc.url, {
            request_id: `${tag}-${i}`,
            payment_intent_id: intents[i % intents.length]!,
            amount: 1_000,
          });
          expect(answer).toMatchObject({ success: true, status: 'queued' });
          accepted.push(answer.request_id as string);
          if (outage) duringOutage.push(answer.request_id as string);
          await sleep(40);
        }
      }),
    );

    let stoppedAt = 0;
    let startedAt = 0;
    try {
      await sleep(2_000);
      await rabbitmqctl('stop_app');
      stoppedAt = Date.now();
      outage = true;
      expect(
        await waitFor(
          async () => svc.deps.broker.isConnected(),
          (c) => !c,
          10_000,
        ),
      ).toBe(false);
      // Operators see it too: readiness names the broker while it is down, and the process, which serves the API,
      // stays ready (its refunds wait in the outbox).
      const ready = await fetch(`${svc.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ok', degraded: ['broker'] });
      await sleep(3_000);
      outage = false;
      await restoreRabbit();
      startedAt = Date.now();
      await sleep(2_000);
    } finally {
      streaming = false;
      await stream;
      if (!startedAt) await restoreRabbit();
    }

    expect(duringOutage.length).toBeGreaterThan(0);
    const counts = await waitFor(
      () => countsOf(svc, accepted),
      (c) => c.succeeded === accepted.length,
      60_000,
      250,
    );
    const recoveredIn = (Date.now() - startedAt) / 1000;
    expect(counts).toMatchObject({ succeeded: accepted.length, queued: 0, processing: 0, failed: 0 });
    await expectExactlyOnce(stripe, accepted, 1_000);
    expect(svc.deps.broker.isConnected()).toBe(true);
    expect((await fetch(`${svc.url}/readyz`)).status).toBe(200);

    await waitFor(
      () => svc.deps.store.outbox.pendingCount(),
      (p) => p === 0,
      30_000,
    );
    const peek = await peekRabbit();
    try {
      await waitFor(
        () => peek.depth(topology.requests),
        (d) => d === 0,
        10_000,
      );
      for (const q of [topology.requests, topology.deadLetter, ...retryQueues(topology)])
        expect(await peek.depth(q), q).toBe(0);
    } finally {
      await peek.close();
    }
    console.info(
      `[async] RabbitMQ restart: ${accepted.length} refunds accepted (${duringOutage.length} while it was down ` +
        `for ${((startedAt - stoppedAt) / 1000).toFixed(1)} s); all refunded once, ${recoveredIn.toFixed(1)} s after it was back`,
    );
  }, 120_000);
});
