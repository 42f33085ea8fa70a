/**
 * RabbitMQ credentials outside ASCII. The original service took RABBITMQ_USER and RABBITMQ_PASSWORD as
 * they were; this one puts them, percent-encoded, into a URL, and amqplib decodes a URL's user and password
 * with `unescape()`, which reads each byte of a UTF-8 sequence as a character of its own: `pässwört` reached
 * RabbitMQ as `pÃ¤sswÃ¶rt` and the login was refused for ever. The test makes a user of its own with
 * rabbitmqctl and logs in as it.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createRabbitBroker, type Broker } from '../../src/queue/index.js';
import { rabbitUrlFromEnv } from '../../src/queue/rabbit-url.js';
import {
  RABBIT_URL,
  deleteEverything,
  probeRabbit,
  rabbitctl,
  topologyFor,
  uniquePrefix,
} from './support/rabbit.js';

const prefix = uniquePrefix('creds');
const rabbit = await probeRabbit('rabbitmq credentials', true);
const user = `${prefix}.üser`;
const password = `pässwört-${randomBytes(4).toString('hex')}-€`;
let created = false;
const opened: Broker[] = [];

afterAll(async () => {
  await Promise.all(opened.map((b) => b.close()));
  if (!rabbit.ok) return;
  await deleteEverything(prefix);
  if (created) await rabbitctl('delete_user', user);
});

describe.skipIf(!rabbit.ok)('RabbitMQ credentials', () => {
  it('logs in with a user name and password outside ASCII, given as RABBITMQ_USER/RABBITMQ_PASSWORD', async () => {
    await rabbitctl('add_user', user, password);
    created = true;
    await rabbitctl('set_permissions', '-p', '/', user, '.*', '.*', '.*');
    const shared = new URL(RABBIT_URL);
    const url = rabbitUrlFromEnv({
      RABBITMQ_HOST: shared.hostname,
      RABBITMQ_PORT: shared.port || '5672',
      RABBITMQ_USER: user,
      RABBITMQ_PASSWORD: password,
    });
    const broker = createRabbitBroker({
      url: url!,
      topology: topologyFor(prefix),
      connectionName: prefix,
      reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
      startTimeoutMs: 8_000,
    });
    opened.push(broker);
    // start() waits up to startTimeoutMs for the first connection and its topology, then goes on; a refused
    // login leaves the broker unconnected, and it cannot say how deep a queue is.
    await broker.start();
    expect(await broker.queueDepth(topologyFor(prefix).requests)).toBe(0);
  }, 30_000);
});
