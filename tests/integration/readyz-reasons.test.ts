/**
 * /readyz named the check that was down (`failing: ["store"]`) but not why: the reason went to the log only, and an
 * operator behind a load balancer reads the probe's answer. Each check that is down now says why in `reasons`, in a
 * fixed phrase per known cause: never a driver's or SDK's own words, which may carry hosts, users or keys.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox } from '../../src/sandbox/index.js';
import { getJson } from '../helpers/http.js';
import { freePort } from '../helpers/processes.js';
import { startSharedStripe, startTestService, type TestService } from '../helpers/service.js';

interface ReadyAnswer {
  status: number;
  text: string;
  body: {
    status: string;
    failing?: string[];
    degraded?: string[];
    reasons?: Record<string, string>;
    checks: Record<string, string>;
  };
}

async function probe(url: string): Promise<ReadyAnswer> {
  const res = await fetch(`${url}/readyz`);
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as ReadyAnswer['body'] };
}

describe('/readyz says why a check is down', () => {
  let svc: TestService;
  beforeAll(async () => {
    svc = await startTestService('sqlite');
  });
  afterAll(async () => {
    await svc?.stop();
  });

  it('gives no reasons while every check passes', async () => {
    const res = await getJson(`${svc.url}/readyz`);
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      status: 'ok',
      checks: { store: 'ok', broker: 'not_configured', stripe: 'ok' },
    });
  });

  it('says Stripe refuses the key, naming the variable and never the key', async () => {
    const known = `sk_test_known${randomBytes(10).toString('hex')}`;
    const wrongKey = `sk_test_wrong${randomBytes(10).toString('hex')}`;
    const sandbox = await startSandbox({ secretKey: known });
    const wrong = await startTestService('sqlite', {
      STRIPE_SECRET_KEY: wrongKey,
      STRIPE_API_BASE: sandbox.url,
      API_AUTH: 'off',
    });
    try {
      const res = await probe(wrong.url);
      expect(res.status).toBe(503);
      expect(res.body.failing).toEqual(['stripe']);
      expect(res.body.reasons).toEqual({ stripe: "Stripe refuses this process's key (STRIPE_SECRET_KEY)" });
      expect(res.text).not.toContain(wrongKey);
      expect(res.text).not.toContain(wrongKey.slice(-4));
      expect(res.text).not.toContain(sandbox.url);
    } finally {
      await wrong.stop();
      await sandbox.close();
    }
  });

  it('says Stripe answers with server errors, for a degraded check too', async () => {
    const stripe = await startSharedStripe();
    await stripe.faults({ error_rate: 1 });
    const failing = await startTestService('sqlite', { ...stripe.env });
    try {
      const res = await probe(failing.url);
      expect(res.status).toBe(200);
      expect(res.body.degraded).toEqual(['stripe']);
      expect(res.body.reasons).toEqual({ stripe: 'Stripe answers with server errors' });
    } finally {
      await failing.stop();
      await stripe.close();
    }
  });

  it('says Stripe did not answer in time when it is slower than the check', async () => {
    const stripe = await startSharedStripe();
    const slow = await startTestService('sqlite', { ...stripe.env });
    await stripe.faults({ latency_ms: 3_000, match: { method: 'GET', path_prefix: '/v1/payment_intents' } });
    try {
      const res = await probe(slow.url);
      expect(res.status).toBe(200);
      expect(res.body.degraded).toEqual(['stripe']);
      expect(res.body.reasons).toEqual({ stripe: 'Stripe did not answer in time' });
    } finally {
      await stripe.faults({});
      await slow.stop();
      await stripe.close();
    }
  });

  it('says RabbitMQ is not connected, without its address or credentials', async () => {
    const closed = await freePort();
    const down = await startTestService('sqlite', {
      RABBITMQ_URL: `amqp://payments:hunter2secret@127.0.0.1:${closed}`,
    });
    try {
      const res = await probe(down.url);
      expect(res.status).toBe(200);
      expect(res.body.degraded).toEqual(['broker']);
      expect(res.body.reasons).toEqual({ broker: 'RabbitMQ is not connected' });
      expect(res.text).not.toContain('hunter2secret');
      expect(res.text).not.toContain(String(closed));
    } finally {
      await down.stop();
    }
  });
});
