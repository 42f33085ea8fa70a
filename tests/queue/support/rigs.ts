/**
 * Set-up the RabbitMQ suites share beyond rabbit.ts: a test file's own corner of the shared broker, a relay rig whose
 * broker reaches RabbitMQ through a proxy that plays a resource alarm, a TCP proxy in front of RabbitMQ whose
 * connections a test steers (refuses, sorts, drops), and a handler that acks what it is given.
 */
import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import { afterAll } from 'vitest';
import type { Delivery, Outcome, RabbitBrokerOptions } from '../../../src/queue/index.js';
import { alarmProxy, type AlarmProxy } from './alarm-proxy.js';
import {
  RABBIT_URL,
  deleteEverything,
  probeRabbit,
  relayRig,
  uniquePrefix,
  type RelayRig,
} from './rabbit.js';

/**
 * A test file's own part of the shared RabbitMQ: a name prefix no other file (or run) shares and whether RabbitMQ
 * answers (probeRabbit: `suite` names the file in its warning or CI failure; `needsCtl`, rabbitmqctl too). After the
 * file, every queue and exchange under the prefix is deleted.
 */
export async function rabbitFile(
  area: string,
  suite: string,
  needsCtl = false,
): Promise<{ prefix: string; ok: boolean }> {
  const prefix = uniquePrefix(area);
  const { ok } = await probeRabbit(suite, needsCtl);
  afterAll(async () => {
    if (ok) await deleteEverything(prefix);
  });
  return { prefix, ok };
}

export interface AlarmRig extends RelayRig {
  /** Between the broker and RabbitMQ: block() starts the alarm, unblock() ends it. */
  proxy: AlarmProxy;
}

/**
 * A relayRig (maxBackoffMs 100) whose broker reaches RabbitMQ through an alarmProxy blocking `blocks` (every
 * connection by default). close() ends the alarm, then closes the rig and the proxy.
 */
export async function alarmRig(
  prefix: string,
  opts: { blocks?: 'all' | 'publishers'; broker?: Partial<RabbitBrokerOptions> } = {},
): Promise<AlarmRig> {
  const proxy = await alarmProxy(new URL(RABBIT_URL), { blocks: opts.blocks });
  let rig: RelayRig;
  try {
    rig = await relayRig(prefix, { maxBackoffMs: 100, broker: { url: proxy.url, ...opts.broker } });
  } catch (err) {
    await proxy.close();
    throw err;
  }
  return {
    ...rig,
    proxy,
    async close() {
      proxy.unblock();
      await rig.close();
      await proxy.close();
    },
  };
}

export interface FrontProxy {
  /** The amqp URL (user and password of `target`) that connects through the proxy. */
  url: string;
  /** Ends every connection through the proxy (as a broker restart does); it goes on accepting new ones. */
  drop(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of RabbitMQ at `target` whose connections the test steers. `accept` gets each client
 * connection and `open`, which connects it to RabbitMQ (an error or close of either end ends the other) and forwards
 * what RabbitMQ sends to the client: `accept` refuses the client, or forwards what it sends, as it chooses.
 */
export async function frontProxy(
  target: URL,
  accept: (client: Socket, open: () => Socket) => void,
): Promise<FrontProxy> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    accept(client, () => {
      const upstream = tcpConnect(Number(target.port || 5672), target.hostname);
      sockets.add(client).add(upstream);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      upstream.pipe(client);
      return upstream;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(target.href);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as AddressInfo).port);
  const drop = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    url: url.href,
    drop,
    close: async () => {
      drop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A handler that acks every delivery, once it has noted in `seen` what `note` takes of it (its messageId). */
export function noteAndAck(seen: string[]): (d: Delivery) => Promise<Outcome>;
export function noteAndAck<T>(seen: T[], note: (d: Delivery) => T): (d: Delivery) => Promise<Outcome>;
export function noteAndAck(
  seen: unknown[],
  note: (d: Delivery) => unknown = (d) => d.messageId,
): (d: Delivery) => Promise<Outcome> {
  return async (d) => {
    seen.push(note(d));
    return { kind: 'ack' };
  };
}
