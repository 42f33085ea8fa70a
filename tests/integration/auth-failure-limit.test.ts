/**
 * Failed authentication is limited per client address. The per-key rate limit runs after authentication,
 * so a client sending missing, unknown or revoked keys was never limited: it could try keys as fast as the
 * service answered, each try a lookup in the store, and got 401 every time.
 *
 * Now every 401 counts against the client's address; past AUTH_FAILURES_PER_MINUTE its requests are
 * answered 429 (problem+json, code rate_limited, Retry-After) before any lookup, except those presenting a
 * key this process has already seen work, so other clients behind the same address keep working. Probes
 * and the webhook are never refused, nor /metrics without a key. Addresses come from req.ip, so with TRUST_PROXY=true the
 * address the proxy appended to X-Forwarded-For is the one counted.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { keyRequirements } from '../../src/http/security.js';
import { loadSpec } from '../../src/http/spec.js';
import { RABBITMQ_URL, rabbitAvailable } from '../helpers/services.js';
import { startSharedStripe, startTestService, type TestService } from '../helpers/service.js';
import { deleteEverything, topologyFor, uniquePrefix } from '../queue/support/rabbit.js';

const LIMIT = 5;
let svc: TestService;
let goodKey: string;
let unseenKey: string;

beforeAll(async () => {
  svc = await startTestService('sqlite', {
    API_AUTH: 'on',
    AUTH_FAILURES_PER_MINUTE: String(LIMIT),
    TRUST_PROXY: 'true',
    LOG_LEVEL: 'warn',
  });
  goodKey = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' })).key;
  unseenKey = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' })).key;
});
afterAll(async () => {
  vi.restoreAllMocks();
  await svc?.stop();
});

const from = (ip: string, key?: string) => ({
  'x-forwarded-for': ip,
  ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
});
const status = (ip: string, key?: string, path = '/refund-status/nope') =>
  fetch(`${svc.url}${path}`, { headers: from(ip, key) });

describe('failed authentication is limited per client address', () => {
  const attacker = '203.0.113.7';

  it(`${LIMIT} failures answer 401, then 429 rate_limited with Retry-After, with no key lookup`, async () => {
    // A client behind the same address whose key worked before the attack.
    expect((await status(attacker, goodKey)).status).toBe(404);

    const lookups = vi.spyOn(svc.deps.store.apiKeys, 'findActiveByHash');
    const answers: number[] = [];
    for (let i = 0; i < LIMIT; i++) {
      // Unknown keys and no key at all both count.
      answers.push((await status(attacker, i % 2 ? undefined : `psk_${'x'.repeat(40)}${i}`)).status);
    }
    expect(answers).toEqual(Array(LIMIT).fill(401));
    const lookupsBefore = lookups.mock.calls.length;

    for (const key of [`psk_${'y'.repeat(43)}`, undefined, 'not-a-key']) {
      const res = await status(attacker, key);
      expect(res.status).toBe(429);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const retryAfter = Number(res.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(await res.json()).toMatchObject({ status: 429, code: 'rate_limited', retry_after: retryAfter });
    }
    // A POST is refused before its body is read or its key looked up.
    const post = await fetch(`${svc.url}/payment-intent`, {
      method: 'POST',
      headers: { ...from(attacker, `psk_${'z'.repeat(43)}`), 'content-type': 'application/json' },
      body: '{"amount": 100, "currency": "usd"}',
    });
    expect(post.status).toBe(429);
    expect(lookups.mock.calls.length).toBe(lookupsBefore);
    lookups.mockRestore();
  });

  it('a key that has worked keeps working from that address; a key not seen yet waits', async () => {
    expect((await status(attacker, goodKey)).status).toBe(404);
    const created = await fetch(`${svc.url}/payment-intent`, {
      method: 'POST',
      headers: { ...from(attacker, goodKey), 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 1000, currency: 'usd' }),
    });
    expect(created.status).toBe(200);
    expect((await status(attacker, unseenKey)).status).toBe(429);
  });

  it('other addresses are unaffected, and a key seen to work anywhere is known everywhere', async () => {
    expect((await status('198.51.100.20')).status).toBe(401);
    expect((await status('198.51.100.20', unseenKey)).status).toBe(404);
    expect((await status(attacker, unseenKey)).status).toBe(404);
  });

  it('probes and the webhook are never refused, nor /metrics without a key', async () => {
    for (let i = 0; i < 3; i++) {
      for (const key of [undefined, `psk_${'y'.repeat(43)}`]) {
        expect((await status(attacker, key, '/healthz')).status).toBe(200);
        expect((await status(attacker, key, '/readyz')).status).toBe(200);
      }
      expect((await status(attacker, undefined, '/metrics')).status).toBe(200);
      expect((await status(attacker, goodKey, '/metrics')).status).toBe(200);
    }
    const hook = await fetch(`${svc.url}/webhook`, { method: 'POST', headers: from(attacker), body: '{}' });
    expect(hook.status).toBe(400);
    // A key is optional on /metrics, but one that has not worked yet is still refused.
    expect((await status(attacker, `psk_${'y'.repeat(43)}`, '/metrics')).status).toBe(429);
  });

  it('probes under any name the router answers them by are not refused; variants of keyed paths still are', async () => {
    // Routing ignores a trailing slash: a probe set up as /healthz/ is GET /healthz. The limit matched the path
    // exactly, so an attacker sharing the probe's address (a load balancer without TRUST_PROXY) made it 429.
    for (const path of ['/healthz/', '/readyz/']) {
      const res = await status(attacker, undefined, path);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: expect.any(String) });
    }
    expect((await status(attacker, undefined, '/metrics/')).status).toBe(200);
    // The same variant of a path that needs a key reaches the keyed operation: it stays refused.
    expect((await status(attacker, undefined, '/refund-status/nope/')).status).toBe(429);
    expect((await status('198.51.100.77', goodKey, '/refund-status/nope/')).status).toBe(404);
    // Paths no operation answers (another case: routing is case-sensitive; //healthz, /%68ealthz) need a key, as
    // any unknown path does.
    for (const path of [
      '/HEALTHZ',
      '/Readyz/',
      '/METRICS',
      '/REFUND-STATUS/nope',
      '/Payment-Intent/pi_nope/',
    ]) {
      expect((await status(attacker, undefined, path)).status).toBe(429);
      expect((await status('198.51.100.77', goodKey, path)).status).toBe(404);
    }
    for (const path of ['//healthz', '/%68ealthz', '/healthz//']) {
      expect((await status(attacker, undefined, path)).status).toBe(429);
    }
  });

  it('behind the proxy, addresses a client puts in X-Forwarded-For itself do not give it new counts', async () => {
    // The proxy appends the address it saw to whatever the client sent: the client's own entries come first.
    const client = '203.0.113.50';
    const answers: number[] = [];
    for (let i = 0; i <= LIMIT; i++) answers.push((await status(`10.1.2.${i}, ${client}`)).status);
    expect(answers).toEqual([...Array(LIMIT).fill(401), 429]);
    // Another client behind the same proxy is unaffected.
    expect((await status(`10.1.2.1, 198.51.100.50`)).status).toBe(401);
  });

  it('keys tried on /metrics count: it answers an unknown key as an anonymous scrape, but the key was looked up', async () => {
    // /metrics takes a key or none, so an unknown key there is answered 200 like a scrape without one. Such tries
    // were never counted: anyone could try keys there without limit, each a lookup in the store, and tell a working
    // one by its answer (RateLimit counts a known key's budget, not the address's).
    const guesser = '203.0.113.99';
    for (let i = 0; i < LIMIT; i++) {
      expect((await status(guesser, `psk_${'g'.repeat(40)}${i}`, '/metrics')).status).toBe(200);
    }
    expect((await status(guesser, `psk_${'h'.repeat(43)}`, '/metrics')).status).toBe(429);
    expect((await status(guesser, `psk_${'h'.repeat(43)}`)).status).toBe(429);
    // Scrapes without a key, and with a key that works, are no failures.
    const scraper = '198.51.100.99';
    for (let i = 0; i < LIMIT + 2; i++) {
      expect((await status(scraper, undefined, '/metrics')).status).toBe(200);
      expect((await status(scraper, goodKey, '/metrics')).status).toBe(200);
    }
    expect((await status(scraper, `psk_${'h'.repeat(43)}`)).status).toBe(401);
  });

  it('IPv6 clients are counted by their /56 subnet', async () => {
    const a = '2001:db8:1:100::1';
    const b = '2001:db8:1:1ff::2';
    for (let i = 0; i < LIMIT; i++) expect((await status(a)).status).toBe(401);
    expect((await status(b)).status).toBe(429);
  });
});

describe('which paths need a key, read from the contract', () => {
  it('probes and the webhook need none, /metrics takes one optionally, every other path needs one', () => {
    expect(Object.fromEntries(keyRequirements(loadSpec().document))).toEqual({
      '/healthz': 'none',
      '/readyz': 'none',
      '/webhook': 'none',
      '/metrics': 'optional',
    });
  });
});

describe('AUTH_FAILURES_PER_MINUTE=0', () => {
  it('turns the limit off', async () => {
    const open = await startTestService('sqlite', {
      API_AUTH: 'on',
      AUTH_FAILURES_PER_MINUTE: '0',
      LOG_LEVEL: 'warn',
    });
    try {
      for (let i = 0; i < 40; i++) {
        expect((await fetch(`${open.url}/refund-status/nope`)).status).toBe(401);
      }
    } finally {
      await open.stop();
    }
  });
});

describe('the default', () => {
  it('allows 30 failures a minute per address', async () => {
    const svc2 = await startTestService('sqlite', { API_AUTH: 'on', LOG_LEVEL: 'warn' });
    try {
      const answers: number[] = [];
      for (let i = 0; i < 31; i++) answers.push((await fetch(`${svc2.url}/refund-status/nope`)).status);
      expect(answers.slice(0, 30)).toEqual(Array(30).fill(401));
      expect(answers[30]).toBe(429);
    } finally {
      await svc2.stop();
    }
  });
});

/**
 * Runs `body` with a worker process (ROLE=worker, AUTH_FAILURES_PER_MINUTE=LIMIT, queues named after `tag` and a
 * Stripe of its own), `env` added; stops it and deletes its queues after.
 */
async function withWorker(
  tag: string,
  env: Record<string, string>,
  body: (worker: TestService) => Promise<void>,
): Promise<void> {
  const prefix = uniquePrefix(tag);
  const stripe = await startSharedStripe();
  const worker = await startTestService(
    'sqlite',
    {
      RABBITMQ_URL,
      ROLE: 'worker',
      ...stripe.env,
      AUTH_FAILURES_PER_MINUTE: String(LIMIT),
      ...env,
      LOG_LEVEL: 'warn',
    },
    { topology: topologyFor(prefix) },
  );
  try {
    await body(worker);
  } finally {
    await worker.stop();
    await stripe.close();
    await deleteEverything(prefix);
  }
}

describe.skipIf(!(await rabbitAvailable()))('a worker process (ROLE=worker)', () => {
  it('limits keys tried on its /metrics as the API does', async () => {
    // A worker serves /metrics itself (ops-app.ts), where a key is looked up too: it had no limit, so anyone could
    // try keys there as fast as it answered, each a lookup in the store.
    await withWorker('authw', {}, async (worker) => {
      const known = (await createKey(worker.deps.store.apiKeys, { owner: 'ops', kind: 'secret' })).key;
      const scrape = (key?: string) =>
        fetch(
          `${worker.url}/metrics`,
          key === undefined ? {} : { headers: { authorization: `Bearer ${key}` } },
        );
      expect((await scrape(known)).status).toBe(200);
      for (let i = 0; i < LIMIT; i++) {
        // An unknown key is answered as a scrape without one, and counted.
        expect((await scrape(`psk_${'w'.repeat(40)}${i}`)).status).toBe(200);
      }
      const lookups = vi.spyOn(worker.deps.store.apiKeys, 'findActiveByHash');
      const refused = await scrape(`psk_${'v'.repeat(43)}`);
      expect(refused.status).toBe(429);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await refused.json()).toMatchObject({ status: 429, code: 'rate_limited' });
      expect(lookups).not.toHaveBeenCalled();
      lookups.mockRestore();
      // A key seen to work, and a scrape without a key, are not refused; nor are the probes.
      expect((await scrape(known)).status).toBe(200);
      expect((await scrape()).status).toBe(200);
      expect((await fetch(`${worker.url}/healthz`)).status).toBe(200);
    });
  });
});

describe.skipIf(!(await rabbitAvailable()))('a worker process behind a proxy (TRUST_PROXY)', () => {
  it('counts refused keys by the client address the proxy names, as the API does', async () => {
    // The worker's ops app did not take TRUST_PROXY: every client behind the proxy was one address, so one client's
    // wrong keys got another's first scrape with a valid key refused 429.
    await withWorker('authwp', { METRICS_PUBLIC: 'false', TRUST_PROXY: 'true' }, async (worker) => {
      const scrape = (key: string, client: string) =>
        fetch(`${worker.url}/metrics`, {
          headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': client },
        });
      for (let i = 0; i < LIMIT + 2; i++) await scrape(`psk_${'x'.repeat(40)}${i}`, '203.0.113.9');
      expect((await scrape(`psk_${'x'.repeat(43)}`, '203.0.113.9')).status).toBe(429);
      const known = (await createKey(worker.deps.store.apiKeys, { owner: 'ops', kind: 'secret' })).key;
      const other = await scrape(known, '198.51.100.7');
      expect(other.status, await other.clone().text()).toBe(200);
    });
  });
});
