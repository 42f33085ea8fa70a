/**
 * A scrape waits at most 3 s for the database's answers and then reports them unknown (payments_store_up 0). The
 * read itself went on, and the next scrape started another beside it: while the database was slow, every scrape
 * more than 3 s after the last added five more queries to the background pool's queue (two connections, shared with
 * the outbox relay and its lease renewals), where they waited their turn long after the database was back. /metrics
 * is open to anyone by default.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/ops/metrics.js';
import type { Store } from '../../src/store/index.js';
import { startTestServiceBehindProxy, type TestService } from '../helpers/service.js';
import { postgresAvailable } from '../helpers/services.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';

describe.skipIf(!(await postgresAvailable()))('/metrics reads of a slow database', () => {
  let proxy: TcpProxy;
  let svc: TestService;
  beforeAll(async () => {
    ({ proxy, svc } = await startTestServiceBehindProxy({ DATABASE_TIMEOUT_MS: '20000' }));
  });
  afterAll(async () => {
    proxy?.delayClientBytes(0);
    await svc?.stop();
    await proxy?.close();
  });

  it('a scrape while the last one’s read is still unanswered waits for it instead of reading again', async () => {
    const { store, broker, topology } = svc.deps;
    // The service's own store, its reads counted (each read of a scrape asks for the counts by status once).
    let reads = 0;
    const counted: Store = {
      ...store,
      refunds: {
        ...store.refunds,
        countByStatus: (...args: Parameters<Store['refunds']['countByStatus']>) => {
          reads += 1;
          return store.refunds.countByStatus(...args);
        },
      },
    };
    const metrics = createMetrics();
    metrics.attach({ store: counted, broker, topology });
    expect(await metrics.render()).toContain('payments_store_up 1\n');
    reads = 0;

    // Every byte to the database held 7 s: each scrape below gives up on the answers after 3 s.
    proxy.delayClientBytes(7_000);
    const first = await metrics.render();
    const second = await metrics.render();
    proxy.delayClientBytes(0);
    expect(first).toContain('payments_store_up 0\n');
    expect(second).toContain('payments_store_up 0\n');
    expect(reads).toBe(1);
  }, 40_000);
});
