import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { problemsOf } from './config-support.js';

const variables = (problems: string[]) => problems.map((p) => p.split(/[: ]/)[0]);

describe('configuration at boot', () => {
  it('reports a value refused by its own check together with one refused by a later check (one restart, not two)', () => {
    // LOG_LEVEL is refused by its shape; API_KEYS, DATABASE_URL and RABBITMQ_URL by the checks that read the
    // parsed values. Each alone is reported; together, the later ones went unsaid until LOG_LEVEL was fixed.
    const env = {
      LOG_LEVEL: 'verbose',
      API_KEYS: 'not-a-key-entry',
      DATABASE_URL: 'postgres://payments:hunter2@db:notaport/payments',
      RABBITMQ_URL: 'amqp://guest:hunter2@rabbit:notaport',
    };
    expect(variables(problemsOf(env))).toEqual(['LOG_LEVEL', 'API_KEYS', 'DATABASE_URL', 'RABBITMQ_URL']);
    expect(problemsOf(env).join('\n')).not.toContain('hunter2');
  });

  it('says nothing about a value it could not read beyond that it is wrong: no problem made up from a default', () => {
    // A key with a stray space is refused; it must not also be reported as missing for ROLE=api.
    expect(problemsOf({ STRIPE_SECRET_KEY: 'sk_test_abc ', ROLE: 'api', RABBITMQ_HOST: 'rabbit' })).toEqual([
      'STRIPE_SECRET_KEY: must look like sk_test_..., sk_live_... or rk_...',
    ]);
    // PORT unreadable: SANDBOX_PORT=5000 is not "the same port as PORT (5000)", the default PORT never applied.
    expect(variables(problemsOf({ PORT: 'eighty', SANDBOX_PORT: '5000' }))).toEqual(['PORT']);
    // A RABBITMQ_URL refused by its shape does not make ROLE=worker "need RabbitMQ".
    expect(
      variables(
        problemsOf({ RABBITMQ_URL: 'http://rabbit', ROLE: 'worker', STRIPE_SECRET_KEY: 'sk_test_abc' }),
      ),
    ).toEqual(['RABBITMQ_URL']);
    // The cross-variable checks still run on what could be read.
    expect(
      variables(problemsOf({ PORT: 'eighty', ROLE: 'worker', STRIPE_SECRET_KEY: 'sk_test_abc' })),
    ).toEqual(['PORT', 'ROLE']);
  });

  it('refuses a URL whose password held an unencoded "/", "?" or "#" (read as host and port), never echoing it', () => {
    // A password starting with digits: the URL still parses, as host "payments" and port 1234, and the rest of
    // the password lands in the path, where redactDatabaseUrl does not hide it in the "could not start" line.
    const cases: [Record<string, string>, string][] = [
      [{ DATABASE_URL: 'postgres://payments:1234/hunter2@db:5432/payments' }, 'DATABASE_URL'],
      [{ DATABASE_URL: 'postgres://payments:1234?hunter2@db:5432/payments' }, 'DATABASE_URL'],
      [{ DATABASE_URL: 'postgresql://payments:1234#hunter2@db/payments' }, 'DATABASE_URL'],
      [{ RABBITMQ_URL: 'amqp://guest:1234/hunter2@rabbit:5672' }, 'RABBITMQ_URL'],
      [{ RABBITMQ_URL: 'amqps://guest:1234#hunter2@rabbit:5671/' }, 'RABBITMQ_URL'],
    ];
    for (const [env, variable] of cases) {
      const problems = problemsOf(env);
      expect(problems, JSON.stringify(env)).toHaveLength(1);
      expect(problems[0]).toMatch(new RegExp(`^${variable}: `));
      expect(problems[0]).not.toContain('hunter2');
    }
    // Encoded, the same passwords are taken as they are.
    const db = 'postgres://payments:1234%2Fhunter2@db:5432/payments';
    expect(loadConfig({ DATABASE_URL: db }).database.url).toBe(db);
    const rabbit = 'amqp://guest:1234%2Fhunter2@rabbit:5672/%2F';
    expect(loadConfig({ RABBITMQ_URL: rabbit }).rabbitmq.url).toBe(rabbit);
    // The old service's variables carry any password, encoded by the service itself.
    expect(
      loadConfig({ RABBITMQ_HOST: 'rabbit', RABBITMQ_USER: 'app', RABBITMQ_PASSWORD: '1234/p@ss#w?rd%' })
        .rabbitmq.url,
    ).toBe('amqp://app:1234%2Fp%40ss%23w%3Frd%25@rabbit:5672');
  });

  it('refuses a STRIPE_API_BASE path, query or credentials the SDK would drop, naming the variable only', () => {
    // The SDK takes the host, port and scheme and sends /v1/... there: a proxy's path prefix was dropped without a
    // word, and every Stripe call went to the wrong place (404s, readiness degraded), found only once payments failed.
    const key = { STRIPE_SECRET_KEY: 'sk_test_abc' };
    for (const base of [
      'http://proxy.internal/stripe',
      'http://127.0.0.1:12111/api/v2',
      'http://127.0.0.1:12111/?token=hunter2',
      'http://user:hunter2@127.0.0.1:12111',
    ]) {
      const problems = problemsOf({ ...key, STRIPE_API_BASE: base });
      expect(problems, base).toEqual([
        'STRIPE_API_BASE: must be a scheme, host and port only, such as http://127.0.0.1:12111 (the Stripe SDK sends its requests to /v1/... there)',
      ]);
    }
    // Not a URL at all, or another scheme: said once, by the URL check.
    for (const base of ['not a url', 'http://', 'ftp://127.0.0.1/x']) {
      expect(problemsOf({ ...key, STRIPE_API_BASE: base }), base).toEqual([
        'STRIPE_API_BASE: must be an http(s) URL such as http://127.0.0.1:12111',
      ]);
    }
    // What it reads as meant stays accepted: the root, and Stripe's own /v1, which the SDK adds anyway.
    for (const base of [
      'http://127.0.0.1:12111',
      'http://127.0.0.1:12111/',
      'https://api.stripe.com/v1',
      'https://api.stripe.com/v1/',
    ]) {
      expect(loadConfig({ ...key, STRIPE_API_BASE: base }).stripe.apiBase?.host, base).toBeTruthy();
    }
  });
});
