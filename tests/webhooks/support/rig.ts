/**
 * One test rig for the webhook suites: a Stripe sandbox of the file's own (so the test decides which
 * webhooks the service gets), the real service on port 0 pointed at it with a known signing secret,
 * real RabbitMQ under a unique prefix, and SQLite or a PostgreSQL schema of its own.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Channel, type ChannelModel } from 'amqplib';
import Database from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';
import Stripe from 'stripe';
import { afterAll, beforeAll } from 'vitest';
import { createKey } from '../../../src/auth/api-keys.js';
import { startSandbox, type Sandbox } from '../../../src/sandbox/index.js';
import type { TopologyNames } from '../../../src/queue/index.js';
import { createStripeClient } from '../../../src/stripe/client.js';
import { getJson, payOnHostedPage, postJson } from '../../helpers/http.js';
import { startTestService, type Db, type TestService } from '../../helpers/service.js';
import { POSTGRES_URL, postgresAvailable } from '../../helpers/services.js';
import {
  RABBIT_URL,
  deleteEverything,
  probeRabbit,
  topologyFor,
  uniquePrefix,
} from '../../queue/support/rabbit.js';

export { RABBIT_URL, getJson, postJson };

/** Whether RabbitMQ is there; in CI a missing broker registers a failing test instead of skipping. */
export async function rabbitReady(suite: string): Promise<boolean> {
  return (await probeRabbit(suite)).ok;
}

/** SQLite always; PostgreSQL when reachable (in CI it must be). */
export async function databases(): Promise<Db[]> {
  return ['sqlite', ...((await postgresAvailable()) ? (['postgres'] as const) : [])];
}

export interface AmqpMessage {
  messageId: string;
  routingKey: string;
  exchange: string;
  body: unknown;
  persistent: boolean;
  contentType: string | undefined;
}

export interface RigOptions {
  /** Whether the sandbox sends its own webhooks to the service (default false: the test sends them). */
  deliverWebhooks?: boolean;
  /** How long sandbox refunds stay pending; default one hour, so tests settle them by hand. */
  refundSettleDelayMs?: number;
  env?: Record<string, string>;
}

export interface Rig {
  readonly db: Db;
  readonly svc: TestService;
  readonly sandbox: Sandbox;
  /** The sandbox through the SDK, as a person in the Stripe dashboard would act on it. */
  readonly dashboard: Stripe;
  readonly secret: string;
  readonly secretKey: string;
  readonly topology: TopologyNames;
  /** Declares a queue bound to the events exchange (through the service's broker, as a subscriber would). */
  subscribe(pattern: string): Promise<string>;
  /** Takes every message in `queue` now (ack'ed). */
  drain(queue: string): Promise<AmqpMessage[]>;
  /** Posts `payload` with a signature made by the official SDK. */
  send(
    payload: string,
    opts?: { secret?: string; timestamp?: number; signature?: string | null },
  ): Promise<Response>;
  /** Waits until every stored event is applied and every outbox row is confirmed by RabbitMQ. */
  settled(timeoutMs?: number): Promise<void>;
  /** Raw row counts, straight from the database. */
  counts(): Promise<{ webhook_events: number; outbox: number; refunds: number; payments: number }>;
  /** Moves a pending sandbox refund to its final state (it then emits its events). */
  settleRefund(id: string): Promise<void>;
  stop(): Promise<void>;
}

const TABLES = ['webhook_events', 'outbox', 'refunds', 'payments'] as const;

export async function startRig(db: Db, area: string, opts: RigOptions = {}): Promise<Rig> {
  const secret = `whsec_${randomBytes(24).toString('hex')}`;
  const secretKey = `sk_test_webhooks${randomBytes(12).toString('hex')}`;
  const prefix = uniquePrefix(`webhooks.${area}`);
  const topology = topologyFor(prefix);
  const schema = db === 'postgres' ? `wh_${process.pid}_${randomBytes(4).toString('hex')}` : undefined;
  const sandbox = await startSandbox({
    secretKey,
    refundSettleDelayMs: opts.refundSettleDelayMs ?? 3_600_000,
  });
  let svc: TestService;
  try {
    svc = await startTestService(
      db,
      {
        STRIPE_SECRET_KEY: secretKey,
        STRIPE_API_BASE: sandbox.url,
        STRIPE_WEBHOOK_SECRET: secret,
        STRIPE_MAX_NETWORK_RETRIES: '0',
        RABBITMQ_URL: RABBIT_URL,
        // API keys are not what these suites test; the webhook route never needs one anyway.
        API_AUTH: 'off',
        ...opts.env,
      },
      { topology, ...(schema ? { storeSchema: schema } : {}) },
    );
  } catch (err) {
    await sandbox.close();
    throw err;
  }
  if (opts.deliverWebhooks) sandbox.addWebhookEndpoint({ url: `${svc.url}/webhook`, secret });
  const dashboard = createStripeClient(
    { secretKey, apiBase: new URL(sandbox.url), timeoutMs: 20_000, maxNetworkRetries: 0 },
    pino({ level: 'silent' }),
  );

  let amqp: { conn: ChannelModel; ch: Channel } | null = null;
  async function channel(): Promise<Channel> {
    if (!amqp) {
      // Without noDelay every basic.get waits out Nagle + delayed ACK (~40 ms).
      const conn = await connect(RABBIT_URL, { noDelay: true });
      conn.on('error', () => {});
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      amqp = { conn, ch };
    }
    return amqp.ch;
  }

  let sqlite: Database.Database | null = null;
  async function counts() {
    if (db === 'sqlite') {
      sqlite ??= new Database(svc.deps.config.database.url.slice('sqlite:'.length), {
        readonly: true,
        fileMustExist: true,
      });
      const one = (t: string) => (sqlite!.prepare(`select count(*) as n from ${t}`).get() as { n: number }).n;
      return Object.fromEntries(TABLES.map((t) => [t, one(t)])) as Record<(typeof TABLES)[number], number>;
    }
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      const out: Record<string, number> = {};
      for (const t of TABLES) {
        const { rows } = await client.query<{ n: string }>(`select count(*) as n from "${schema}".${t}`);
        out[t] = Number(rows[0]!.n);
      }
      return out as Record<(typeof TABLES)[number], number>;
    } finally {
      await client.end();
    }
  }

  const subscriptions: string[] = [];
  return {
    db,
    svc,
    sandbox,
    dashboard,
    secret,
    secretKey,
    topology,
    async subscribe(pattern) {
      const queue = `${prefix}.sub${subscriptions.length}`;
      await svc.deps.broker.bind(queue, topology.events, pattern);
      subscriptions.push(queue);
      return queue;
    },
    async drain(queue) {
      const ch = await channel();
      const out: AmqpMessage[] = [];
      for (;;) {
        const msg = await ch.get(queue, { noAck: false });
        if (msg === false) break;
        ch.ack(msg);
        out.push({
          messageId: String(msg.properties.messageId),
          routingKey: msg.fields.routingKey,
          exchange: msg.fields.exchange,
          body: JSON.parse(msg.content.toString('utf8')),
          persistent: msg.properties.deliveryMode === 2,
          contentType: msg.properties.contentType as string | undefined,
        });
      }
      return out;
    },
    async send(payload, sendOpts = {}) {
      const signature =
        sendOpts.signature !== undefined
          ? sendOpts.signature
          : Stripe.webhooks.generateTestHeaderString({
              payload,
              secret: sendOpts.secret ?? secret,
              ...(sendOpts.timestamp !== undefined ? { timestamp: sendOpts.timestamp } : {}),
            });
      return fetch(`${svc.url}/webhook`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json; charset=utf-8',
          ...(signature === null ? {} : { 'stripe-signature': signature }),
        },
        body: payload,
      });
    },
    async settled(timeoutMs = 45_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        await svc.deps.webhooks.idle();
        const unprocessed = await svc.deps.store.inbox.countUnprocessed();
        const pending = await svc.deps.store.outbox.pendingCount();
        if (unprocessed === 0 && pending === 0) return;
        if (Date.now() > deadline) {
          throw new Error(`not settled: ${unprocessed} events unapplied, ${pending} outbox rows unsent`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    counts,
    async settleRefund(id) {
      const res = await fetch(`${sandbox.url}/_sandbox/refunds/${id}/settle`, { method: 'POST' });
      if (!res.ok) throw new Error(`settle ${id}: ${res.status} ${await res.text()}`);
    },
    async stop() {
      sqlite?.close();
      await svc.stop();
      await sandbox.close();
      if (amqp) await amqp.conn.close().catch(() => {});
      await deleteEverything(prefix);
      if (schema) {
        const client = new pg.Client({ connectionString: POSTGRES_URL });
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await client.end();
      }
    },
  };
}

/** Polls until `check` returns a value (not undefined, null or false); the deadline only bounds a hang. */
export async function until<T>(
  check: () => Promise<T | undefined | null | false> | T | undefined | null | false,
  what: string,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Registers the beforeAll/afterAll a suite's rig needs (startRig, then stop) and returns the rig, filled in
 * by beforeAll: read it in tests and later hooks, not while the suite is being collected.
 */
export function useRig(db: Db, area: string, opts: RigOptions = {}): Rig {
  const rig = {} as Rig;
  beforeAll(async () => {
    Object.assign(rig, await startRig(db, area, opts));
  });
  afterAll(async () => {
    await (rig as Partial<Rig>).stop?.();
  });
  return rig;
}

/** A paid payment intent made through the service (so the ledger knows its owner). */
export async function paidThroughService(
  rig: Rig,
  card: string,
  amount = 1000,
  currency = 'usd',
): Promise<string> {
  const res = await fetch(`${rig.svc.url}/payment-intent`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ amount, currency, payment_method: card, confirm: true }),
  });
  const body = (await res.json()) as { paymentIntentId?: string; status?: string };
  if (res.status !== 200 || body.status !== 'succeeded') {
    throw new Error(`payment intent: ${res.status} ${JSON.stringify(body)}`);
  }
  return body.paymentIntentId!;
}

/** Headers carrying a new secret API key of `owner` (the rig's service runs with API_AUTH=on). */
export async function bearerOf(rig: Rig, owner: string): Promise<Record<string, string>> {
  const { key } = await createKey(rig.svc.deps.store.apiKeys, { owner, kind: 'secret' });
  return { authorization: `Bearer ${key}` };
}

/**
 * A 6000 usd payment made on the hosted checkout page of a session created through the service with `headers`
 * (the caller's key); returns its payment intent. The payment's webhooks may not have been applied yet.
 */
export async function paidThroughCheckout(rig: Rig, headers: Record<string, string>): Promise<string> {
  const created = await postJson(
    `${rig.svc.url}/create-checkout-session`,
    {
      line_items: [
        {
          price_data: { currency: 'usd', product_data: { name: 'Lamp' }, unit_amount: 6000 },
          quantity: 1,
        },
      ],
      success_url: 'https://shop.example.com/ok',
      cancel_url: 'https://shop.example.com/cancel',
    },
    headers,
  );
  if (created.status !== 200)
    throw new Error(`checkout session: ${created.status} ${JSON.stringify(created.json)}`);
  const paid = await payOnHostedPage(created.json.url as string);
  if (paid.status !== 303) throw new Error(`hosted checkout page: ${paid.status}`);
  return (await rig.dashboard.checkout.sessions.retrieve(created.json.id as string)).payment_intent as string;
}

/** A paid payment intent made directly in Stripe (the ledger has never seen it). */
export async function paidInDashboard(
  rig: Rig,
  card: string,
  amount = 1000,
  currency = 'usd',
): Promise<string> {
  const pi = await rig.dashboard.paymentIntents.create({
    amount,
    currency,
    payment_method: card,
    automatic_payment_methods: { enabled: true, allow_redirects: 'never' },
    confirm: true,
  });
  if (pi.status !== 'succeeded') throw new Error(`dashboard payment intent is ${pi.status}`);
  return pi.id;
}

/** Every event in the sandbox of the given types, oldest first, exactly as Stripe would serialise them. */
export async function sandboxEvents(rig: Rig, types: ReadonlySet<string>): Promise<Stripe.Event[]> {
  const out: Stripe.Event[] = [];
  for await (const e of rig.dashboard.events.list({ limit: 100 })) if (types.has(e.type)) out.push(e);
  return out.reverse();
}

/** Deterministic shuffling, so a failing order can be replayed from the printed seed. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  let s = seed >>> 0;
  const random = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Runs `work` over `items` with `concurrency` workers pulling from one shared list. */
export async function pool<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]!);
      }
    }),
  );
  return results;
}
