/**
 * A worker process (ROLE=worker) serves /healthz, /readyz and /metrics on plain routes. Any other method on them
 * fell through to its catch-all: `POST /healthz` or `OPTIONS /metrics` was a 404 saying "this process only runs
 * the refund worker ... the API is served by ROLE=api", as though the path were not served here, where an API
 * process answers 405 with `Allow: GET` (as README says: `POST /healthz` is 405). HEAD stays a GET without body.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RABBITMQ_URL, rabbitAvailable } from '../helpers/services.js';
import { deleteEverything, topologyFor, uniquePrefix } from '../queue/support/rabbit.js';
import {
  startSharedStripe,
  startTestService,
  type SharedStripe,
  type TestService,
} from '../helpers/service.js';

describe.skipIf(!(await rabbitAvailable()))('a worker process: other methods on its probes', () => {
  const prefix = uniquePrefix('opsm');
  let stripe: SharedStripe;
  let svc: TestService;
  let api: TestService;
  beforeAll(async () => {
    stripe = await startSharedStripe();
    svc = await startTestService(
      'sqlite',
      { RABBITMQ_URL, ROLE: 'worker', ...stripe.env },
      { topology: topologyFor(prefix) },
    );
    api = await startTestService(
      'sqlite',
      { RABBITMQ_URL, ROLE: 'api', ...stripe.env },
      { topology: topologyFor(prefix) },
    );
  });
  afterAll(async () => {
    await svc?.stop();
    await api?.stop();
    await stripe?.close();
    await deleteEverything(prefix);
  });

  for (const path of ['/healthz', '/readyz', '/metrics']) {
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) {
      it(`${method} ${path} is 405 naming GET, as on an API process`, async () => {
        const res = await fetch(`${svc.url}${path}`, { method });
        expect(res.status).toBe(405);
        expect(res.headers.get('allow')).toBe('GET');
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        const body = (await res.json()) as { detail: string };
        expect(body.detail).toBe(`${method} is not allowed on ${path}.`);
      });
    }
  }

  it('GET and HEAD still answer, and an unknown path is still the 404 naming the role', async () => {
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
    const head = await fetch(`${svc.url}/metrics`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const other = await fetch(`${svc.url}/payment-intent`, { method: 'POST' });
    expect(other.status).toBe(404);
    expect(((await other.json()) as { detail: string }).detail).toMatch(/ROLE=worker/);
  });

  it('counts them as the API does, with the requests that reach no operation', async () => {
    await (await fetch(`${svc.url}/readyz`, { method: 'POST' })).arrayBuffer();
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(metrics).toMatch(/^payments_http_requests_total\{operation="none",status="405"\} \d+$/m);
  });

  for (const path of ['/healthz', '/readyz', '/metrics']) {
    it(`GET ${path} with a query parameter the contract does not name is the API's 400`, async () => {
      const query = '?format=json';
      const [worker, fromApi] = await Promise.all(
        [svc, api].map(async (s) => {
          const res = await fetch(`${s.url}${path}${query}`);
          const { request_id: _id, ...problem } = (await res.json()) as Record<string, unknown>;
          return { status: res.status, type: res.headers.get('content-type'), problem };
        }),
      );
      expect(fromApi?.status).toBe(400);
      expect(worker).toEqual(fromApi);
    });
  }

  it('counts those 400s under their operation, as the API does', async () => {
    await (await fetch(`${svc.url}/healthz?verbose=1`)).arrayBuffer();
    const labelled = async (s: TestService) =>
      /^payments_http_requests_total\{operation="getHealth",status="400"\} \d+$/m.test(
        await (await fetch(`${s.url}/metrics`)).text(),
      );
    expect(await labelled(api)).toBe(true);
    expect(await labelled(svc)).toBe(true);
  });
});
