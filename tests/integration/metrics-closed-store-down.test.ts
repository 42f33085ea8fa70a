/**
 * README: "While the database does not answer, a scrape still answers: payments_store_up is 0". Not with
 * METRICS_PUBLIC=false: the scraper's key is looked up in the database, and the lookup failing made every scrape a
 * 503, so Prometheus lost every figure (HTTP, Stripe, RabbitMQ) for as long as the database was away, when they
 * matter most. A key that scraped a moment ago is let in again while its lookup cannot be made; a key not seen
 * scraping, a publishable one, or none, is answered as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { postgresAvailable } from '../helpers/services.js';
import { startTestServiceBehindProxy, type TestService } from '../helpers/service.js';
import type { TcpProxy } from '../helpers/tcp-proxy.js';

describe.skipIf(!(await postgresAvailable()))(
  '/metrics behind a key while PostgreSQL does not answer',
  () => {
    let proxy: TcpProxy;
    let svc: TestService;
    let scraper: string;
    let unseen: string;
    let browser: string;
    beforeAll(async () => {
      ({ proxy, svc } = await startTestServiceBehindProxy({
        DATABASE_TIMEOUT_MS: '400',
        METRICS_PUBLIC: 'false',
        API_AUTH: 'on',
        LOG_LEVEL: 'warn',
      }));
      scraper = (await createKey(svc.deps.store.apiKeys, { owner: 'ops', kind: 'secret' })).key;
      unseen = (await createKey(svc.deps.store.apiKeys, { owner: 'ops', kind: 'secret' })).key;
      browser = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'publishable' })).key;
    });
    afterAll(async () => {
      await svc?.stop();
      await proxy?.close();
    });

    const scrape = (key?: string) =>
      fetch(`${svc.url}/metrics`, key ? { headers: { authorization: `Bearer ${key}` } } : {});

    it('the scraper keeps its figures, with payments_store_up 0; others are answered as before', async () => {
      const up = await scrape(scraper);
      expect(up.status).toBe(200);
      expect(await up.text()).toContain('payments_store_up 1\n');
      expect((await scrape(browser)).status).toBe(401);
      proxy.blackHole();
      try {
        const down = await scrape(scraper);
        expect(down.status).toBe(200);
        const text = await down.text();
        expect(text).toContain('payments_store_up 0\n');
        expect(text).toMatch(/^payments_http_requests_total\{operation="getMetrics",status="200"\} 1$/m);

        const other = await scrape(unseen);
        expect(other.status).toBe(503);
        expect(((await other.json()) as { code: string }).code).toBe('store_unavailable');
        expect((await scrape(browser)).status).toBe(503);
        const none = await scrape();
        expect(none.status).toBe(401);
        await none.arrayBuffer();
      } finally {
        proxy.forward();
      }
    }, 30_000);
  },
);
