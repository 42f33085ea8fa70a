/**
 * /metrics is open by default and scraped by anyone who can reach the port. Each scrape asked RabbitMQ for the
 * depth of three queues, each on a channel of its own opened for it: a burst of scrapes opened three channels per
 * scrape at once on the connection the service publishes and consumes on, and a RabbitMQ that stopped answering
 * kept every scrape waiting (until the connection's heartbeat gave up on it, a minute or more) while each new
 * scrape opened three more channels behind them.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { RABBITMQ_URL, rabbitAvailable } from '../helpers/services.js';
import { proxyFor, type TcpProxy } from '../helpers/tcp-proxy.js';
import { deleteEverything, topologyFor, uniquePrefix } from '../queue/support/rabbit.js';

const depthLines = (text: string) => text.split('\n').filter((l) => l.startsWith('payments_queue_depth{'));

describe.skipIf(!(await rabbitAvailable()))('queue depths on /metrics', () => {
  let prefix: string;
  let proxy: TcpProxy;
  let svc: TestService;
  /** Questions the service's broker was asked for a queue's depth (each opens a channel on RabbitMQ). */
  let asked: number;

  beforeEach(async () => {
    prefix = uniquePrefix('rzq');
    const via = await proxyFor(RABBITMQ_URL);
    proxy = via.proxy;
    svc = await startTestService(
      'sqlite',
      { RABBITMQ_URL: via.url, ROLE: 'all' },
      { topology: topologyFor(prefix) },
    );
    // Counted, not replaced: the real broker still asks RabbitMQ.
    const broker = svc.deps.broker;
    const queueDepth = broker.queueDepth.bind(broker);
    asked = 0;
    broker.queueDepth = (queue: string) => {
      asked += 1;
      return queueDepth(queue);
    };
    const ready = await eventually(
      async () => (await fetch(`${svc.url}/metrics`)).text(),
      (t) => depthLines(t).length === 3,
      10_000,
    );
    expect(depthLines(ready)).toHaveLength(3);
  });

  afterEach(async () => {
    proxy.forward();
    await svc?.stop();
    await proxy?.close();
    await deleteEverything(prefix);
  });

  it('a burst of scrapes asks RabbitMQ once per queue, and every scrape shows the depths', async () => {
    // RabbitMQ slow to answer: every scrape of the burst arrives while the first one's questions are under way.
    proxy.delayClientBytes(500);
    asked = 0;
    const scrapes = await Promise.all(
      Array.from({ length: 20 }, async () => (await fetch(`${svc.url}/metrics`)).text()),
    );
    proxy.delayClientBytes(0);
    for (const text of scrapes) expect(depthLines(text)).toHaveLength(3);
    expect(asked).toBe(3);
  }, 30_000);

  it('a scrape while RabbitMQ does not answer comes back without depths, and asks no more meanwhile', async () => {
    proxy.blackHole();
    asked = 0;
    const first = await (await fetch(`${svc.url}/metrics`)).text();
    const second = await (await fetch(`${svc.url}/metrics`)).text();
    expect(depthLines(first)).toEqual([]);
    expect(depthLines(second)).toEqual([]);
    expect(first).toMatch(/^payments_http_requests_total\{/m);
    // The first scrape's questions are still unanswered: the second waited for them instead of asking again.
    expect(asked).toBe(3);
  }, 20_000);
});
