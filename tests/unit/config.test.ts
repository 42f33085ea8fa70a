import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, loadConfig } from '../../src/config/index.js';
import { problemsOf } from './config-support.js';

describe('config', () => {
  it('needs nothing for the embedded default: port 5000, SQLite, in-process sandbox and queue', () => {
    const c = loadConfig({});
    expect(c.port).toBe(5000);
    expect(c.database.url).toBe('sqlite:./data/payments.db');
    expect(c.database.poolSize).toBe(10);
    expect(c.stripe.mode).toBe('sandbox');
    expect(c.rabbitmq.url).toBeNull();
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.stripe)).toBe(true);
  });

  it('TRUST_PROXY counts proxies: true is one, false none, or a number', () => {
    const hops = (v: string) => loadConfig({ TRUST_PROXY: v }).http.trustProxy;
    expect([hops('true'), hops('yes'), hops('1'), hops('2'), hops('false'), hops('0')]).toEqual([
      1, 1, 1, 2, 0, 0,
    ]);
    expect(loadConfig({}).http.trustProxy).toBe(0);
    expect(problemsOf({ TRUST_PROXY: 'all' })).toEqual([
      'TRUST_PROXY: must be true (one proxy), false, or the number of proxies (0-10)',
    ]);
  });

  it('keeps the original variable names', () => {
    const c = loadConfig({
      STRIPE_SECRET_KEY: 'sk_test_abc123',
      STRIPE_PUBLISHABLE_KEY: 'pk_test_abc123',
      STRIPE_WEBHOOK_SECRET: 'whsec_abc123',
      RABBITMQ_HOST: 'rabbit.internal',
      RABBITMQ_PORT: '5673',
      RABBITMQ_USER: 'svc',
      RABBITMQ_PASSWORD: 'p@ss word',
      PORT: '8080',
    });
    expect(c.stripe.mode).toBe('remote');
    expect(c.stripe.secretKey).toBe('sk_test_abc123');
    expect(c.rabbitmq.url).toBe('amqp://svc:p%40ss%20word@rabbit.internal:5673');
    expect(c.port).toBe(8080);
  });

  it('prefers RABBITMQ_URL when both are set', () => {
    expect(loadConfig({ RABBITMQ_URL: 'amqp://a:b@h:1/v', RABBITMQ_HOST: 'x' }).rabbitmq.url).toBe(
      'amqp://a:b@h:1/v',
    );
  });

  it('reports every bad value at once, without echoing secrets', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      STRIPE_SECRET_KEY: 'pk_test_51Secretish',
      STRIPE_WEBHOOK_SECRET: 'not-a-secret-value',
      DATABASE_URL: 'mysql://x',
      WORKER_PREFETCH: '0',
      DATABASE_POOL_SIZE: '0',
    });
    const keys = problems.map((p) => p.split(':')[0]);
    expect(keys).toEqual(
      expect.arrayContaining([
        'PORT',
        'STRIPE_SECRET_KEY',
        'STRIPE_WEBHOOK_SECRET',
        'DATABASE_URL',
        'WORKER_PREFETCH',
        'DATABASE_POOL_SIZE',
      ]),
    );
    expect(problems.join('\n')).toContain('publishable key');
    expect(problems.join('\n')).not.toContain('51Secretish');
    expect(problems.join('\n')).not.toContain('not-a-secret-value');
  });

  it('refuses the embedded sandbox in production', () => {
    expect(problemsOf({ NODE_ENV: 'production' }).join()).toMatch(/STRIPE_SECRET_KEY: required/);
  });

  it('requires a webhook secret in production', () => {
    expect(problemsOf({ NODE_ENV: 'production', STRIPE_SECRET_KEY: 'sk_live_x1' }).join()).toMatch(
      /STRIPE_WEBHOOK_SECRET/,
    );
  });

  describe('STRIPE_WEBHOOK_SECRET while a secret is being rolled', () => {
    const OLD = 'whsec_oldSigningSecret0123456789';
    const NEW = 'whsec_newSigningSecret0123456789';
    const secretsOf = (value: string) => loadConfig({ STRIPE_WEBHOOK_SECRET: value }).stripe.webhookSecrets;

    it('takes one secret as before, or several separated by commas, trimmed and in order', () => {
      expect(secretsOf(OLD)).toEqual([OLD]);
      expect(secretsOf(`${OLD},${NEW}`)).toEqual([OLD, NEW]);
      expect(secretsOf(` ${OLD} ,\t${NEW}\n`)).toEqual([OLD, NEW]);
      expect(secretsOf('  ')).toEqual([]);
      expect(loadConfig({}).stripe.webhookSecrets).toEqual([]);
      const five = [1, 2, 3, 4, 5].map((n) => `whsec_secret${n}`);
      expect(secretsOf(five.join(','))).toEqual(five);
    });

    it('refuses a bad list at start, naming the variable and the position, never a value', () => {
      const cases: [string, string][] = [
        [
          `${OLD},`,
          'secret 2 of 2 is empty: separate secrets with single commas, with nothing after the last',
        ],
        [
          `${OLD},,${NEW}`,
          'secret 2 of 3 is empty: separate secrets with single commas, with nothing after the last',
        ],
        [
          ` ,${NEW}`,
          'secret 1 of 2 is empty: separate secrets with single commas, with nothing after the last',
        ],
        [`${OLD},sk_test_notAWebhookSecret`, 'secret 2 of 2 must be a webhook signing secret (whsec_...)'],
        [`${OLD} ${NEW}`, 'must be a webhook signing secret (whsec_...)'],
        [`${OLD};${NEW}`, 'must be a webhook signing secret (whsec_...)'],
        [
          [1, 2, 3, 4, 5, 6].map((n) => `whsec_secret${n}`).join(','),
          'lists 6 secrets; at most 5 are allowed',
        ],
      ];
      for (const [value, problem] of cases) {
        const problems = problemsOf({ STRIPE_WEBHOOK_SECRET: value });
        expect(problems, value).toEqual([`STRIPE_WEBHOOK_SECRET: ${problem}`]);
        for (const secret of ['SigningSecret', 'notAWebhookSecret', 'whsec_secret']) {
          expect(problems.join('\n')).not.toContain(secret);
        }
      }
    });

    it('reports a bad list together with the other bad values', () => {
      expect(
        problemsOf({ PORT: 'eighty', STRIPE_WEBHOOK_SECRET: `${OLD},` }).map((p) => p.split(':')[0]),
      ).toEqual(['PORT', 'STRIPE_WEBHOOK_SECRET']);
    });
  });

  it('sends a live key only to Stripe: STRIPE_API_BASE may name api.stripe.com, nothing else', () => {
    const live = {
      NODE_ENV: 'production',
      STRIPE_SECRET_KEY: 'sk_live_x1',
      STRIPE_WEBHOOK_SECRET: 'whsec_x1',
    };
    expect(problemsOf({ ...live, STRIPE_API_BASE: 'http://sandbox:12111' })).toEqual([
      'STRIPE_API_BASE: a live key must not be sent anywhere but Stripe',
    ]);
    expect(problemsOf({ ...live, STRIPE_API_BASE: 'http://api.stripe.com' })).toHaveLength(1);
    expect(problemsOf({ ...live, STRIPE_API_BASE: 'https://api.stripe.com.evil.example' })).toHaveLength(1);
    expect(loadConfig({ ...live, STRIPE_API_BASE: 'https://api.stripe.com' }).stripe.apiBase?.host).toBe(
      'api.stripe.com',
    );
    expect(loadConfig({ ...live, STRIPE_API_BASE: 'https://api.stripe.com/' }).stripe.mode).toBe('remote');
  });

  it('sends a live key only to Stripe whatever NODE_ENV says', () => {
    for (const NODE_ENV of ['development', 'test', undefined]) {
      const env = {
        ...(NODE_ENV ? { NODE_ENV } : {}),
        STRIPE_SECRET_KEY: 'rk_live_x1',
        STRIPE_API_BASE: 'http://127.0.0.1:12111',
      };
      expect(problemsOf(env), String(NODE_ENV)).toEqual([
        'STRIPE_API_BASE: a live key must not be sent anywhere but Stripe',
      ]);
    }
    expect(
      loadConfig({ STRIPE_SECRET_KEY: 'sk_test_x1', STRIPE_API_BASE: 'http://127.0.0.1:12111' }).stripe
        .apiBase?.port,
    ).toBe('12111');
  });

  it('never runs a live Stripe key without API keys, whatever NODE_ENV says: anyone reaching the port would move real money', () => {
    // NODE_ENV is the variable most easily left unset (development), so it cannot be what lets API_AUTH=off through.
    for (const NODE_ENV of ['development', 'test', undefined]) {
      for (const STRIPE_SECRET_KEY of ['sk_live_x1', 'rk_live_x1']) {
        const env = { ...(NODE_ENV ? { NODE_ENV } : {}), STRIPE_SECRET_KEY };
        expect(problemsOf({ ...env, API_AUTH: 'off' }), `${NODE_ENV} ${STRIPE_SECRET_KEY}`).toEqual([
          'API_AUTH: cannot be off with a live Stripe key (sk_live_/rk_live_): anyone who reaches the port could pay and refund with real money',
        ]);
        // Unset, it is on.
        expect(loadConfig(env).auth.enabled).toBe(true);
      }
    }
    // In production the live key's reason is the one given, once.
    expect(
      problemsOf({
        NODE_ENV: 'production',
        STRIPE_SECRET_KEY: 'sk_live_x1',
        STRIPE_WEBHOOK_SECRET: 'whsec_x1',
        API_AUTH: 'off',
      }),
    ).toEqual([
      'API_AUTH: cannot be off with a live Stripe key (sk_live_/rk_live_): anyone who reaches the port could pay and refund with real money',
    ]);
    // A test key moves no real money: off stays possible outside production.
    expect(loadConfig({ STRIPE_SECRET_KEY: 'sk_test_x1', API_AUTH: 'off' }).auth.enabled).toBe(false);
  });

  it('runs an API-only or worker-only process only with RabbitMQ: the in-process queue cannot join two processes', () => {
    for (const role of ['api', 'worker']) {
      expect(problemsOf({ ROLE: role, STRIPE_SECRET_KEY: 'sk_test_shared' })).toEqual([
        `ROLE: ${role} needs RabbitMQ (RABBITMQ_URL or RABBITMQ_HOST); without it only ROLE=all runs, with the in-process queue`,
      ]);
      expect(
        loadConfig({ ROLE: role, RABBITMQ_HOST: 'rabbit', STRIPE_SECRET_KEY: 'sk_test_shared' }).role,
      ).toBe(role);
    }
    expect(loadConfig({ ROLE: 'all' }).rabbitmq.url).toBeNull();
  });

  it('runs an API-only or worker-only process only with a Stripe key: the embedded sandbox cannot join two processes', () => {
    for (const role of ['api', 'worker']) {
      const problems = problemsOf({ ROLE: role, RABBITMQ_HOST: 'rabbit' });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(
        new RegExp(`^ROLE: ${role} needs STRIPE_SECRET_KEY, a Stripe every process reaches`),
      );
      expect(problems[0]).toContain('npm run sandbox');
    }
    expect(loadConfig({ ROLE: 'all' }).stripe.mode).toBe('sandbox');
  });

  it('refuses a QUEUE_PREFIX that would give names RabbitMQ reserves (amq.*)', () => {
    for (const bad of ['amq', 'amq.staging']) {
      expect(problemsOf({ QUEUE_PREFIX: bad })).toEqual([
        'QUEUE_PREFIX: must not be "amq" or begin with "amq." (RabbitMQ reserves amq.*)',
      ]);
    }
    for (const good of ['staging', 'amqp', 'amq-staging', 'AMQ', 'staging.amq'])
      expect(loadConfig({ QUEUE_PREFIX: good }).rabbitmq.queuePrefix).toBe(good);
  });

  it('takes a Stripe idempotency prefix of at most 40 key-safe characters, none by default', () => {
    expect(loadConfig({}).stripe.idempotencyPrefix).toBeNull();
    expect(loadConfig({ STRIPE_IDEMPOTENCY_PREFIX: 'shop-a.eu_1' }).stripe.idempotencyPrefix).toBe(
      'shop-a.eu_1',
    );
    for (const bad of ['shop a', 'shop:a', 'x'.repeat(41)]) {
      expect(problemsOf({ STRIPE_IDEMPOTENCY_PREFIX: bad })).toEqual([
        'STRIPE_IDEMPOTENCY_PREFIX: must be 1-40 letters, digits, ".", "-" or "_"',
      ]);
    }
  });

  it('takes the PostgreSQL pool size from DATABASE_POOL_SIZE', () => {
    expect(loadConfig({ DATABASE_POOL_SIZE: '25' }).database.poolSize).toBe(25);
  });

  it('limits failed authentication to 30 a minute per client address unless AUTH_FAILURES_PER_MINUTE says otherwise', () => {
    expect(loadConfig({}).auth.authFailuresPerMinute).toBe(30);
    expect(loadConfig({ AUTH_FAILURES_PER_MINUTE: '0' }).auth.authFailuresPerMinute).toBe(0);
    expect(loadConfig({ AUTH_FAILURES_PER_MINUTE: '120' }).auth.authFailuresPerMinute).toBe(120);
    expect(problemsOf({ AUTH_FAILURES_PER_MINUTE: '-1' })[0]).toMatch(/^AUTH_FAILURES_PER_MINUTE/);
    expect(problemsOf({ AUTH_FAILURES_PER_MINUTE: 'many' })[0]).toMatch(/^AUTH_FAILURES_PER_MINUTE/);
  });

  it('refuses a connection URL its driver could not parse, naming the variable but not the password', () => {
    const cases: [Record<string, string>, string][] = [
      [{ DATABASE_URL: 'postgres://payments:hunter2@127.0.0.1:notaport/payments' }, 'DATABASE_URL'],
      [{ DATABASE_URL: 'postgresql://payments:hunter2@db host/payments' }, 'DATABASE_URL'],
      [{ RABBITMQ_URL: 'amqp://guest:hunter2@127.0.0.1:notaport' }, 'RABBITMQ_URL'],
      [{ RABBITMQ_URL: 'amqps://guest:hunter2@rabbit host:5671/' }, 'RABBITMQ_URL'],
      [{ RABBITMQ_HOST: 'rabbit host', RABBITMQ_PASSWORD: 'hunter2' }, 'RABBITMQ_HOST'],
    ];
    for (const [env, variable] of cases) {
      const problems = problemsOf(env);
      expect(problems, JSON.stringify(env)).toHaveLength(1);
      expect(problems[0]).toMatch(new RegExp(`^${variable}: `));
      expect(problems[0]).not.toContain('hunter2');
    }
    // What the drivers take stays accepted: a socket directory instead of a host, IPv6, an encoded password.
    for (const url of [
      'postgres://payments@/payments?host=/var/run/postgresql',
      'postgres://payments:p%40ss@[::1]:5432/payments',
      'postgresql://db.internal/payments',
    ]) {
      expect(loadConfig({ DATABASE_URL: url }).database.url).toBe(url);
    }
    expect(loadConfig({ RABBITMQ_URL: 'amqp://[::1]:5672/%2F' }).rabbitmq.url).toBe('amqp://[::1]:5672/%2F');
    expect(loadConfig({ RABBITMQ_HOST: '::1' }).rabbitmq.url).toBe('amqp://guest:guest@[::1]:5672');
  });

  it('takes a URL scheme in any case, as the drivers do, and still checks the rest of the URL', () => {
    // URL schemes are case-insensitive (RFC 3986); amqplib and pg read AMQP:// and POSTGRES:// as the lower-case
    // ones, and so did the part of the service that picks the driver, but the variables' checks refused them.
    expect(loadConfig({ RABBITMQ_URL: 'AMQP://guest:guest@127.0.0.1:5672' }).rabbitmq.url).toBe(
      'AMQP://guest:guest@127.0.0.1:5672',
    );
    expect(loadConfig({ RABBITMQ_URL: 'Amqps://rabbit.internal' }).rabbitmq.url).toBe(
      'Amqps://rabbit.internal',
    );
    expect(loadConfig({ DATABASE_URL: 'PostgreSQL://db.internal/payments' }).database.url).toBe(
      'PostgreSQL://db.internal/payments',
    );
    expect(loadConfig({ DATABASE_URL: 'SQLite:./data/x.db' }).database.url).toBe('SQLite:./data/x.db');
    expect(problemsOf({ DATABASE_URL: 'POSTGRES://payments:hunter2@127.0.0.1:notaport/payments' })).toEqual([
      expect.stringMatching(/^DATABASE_URL: is not a valid URL/),
    ]);
    expect(problemsOf({ RABBITMQ_URL: 'AMQPX://rabbit.internal' })[0]).toMatch(/^RABBITMQ_URL/);
  });

  it('refuses a retry delay the brokers cannot wait, naming WORKER_RETRY_DELAYS_MS', () => {
    expect(loadConfig({ WORKER_RETRY_DELAYS_MS: '1,2147483647' }).worker.retryDelaysMs).toEqual([
      1, 2147483647,
    ]);
    // 0 used to stop the start later with exit 1 and no variable named; above 2^31 - 1 ms the in-process queue's
    // timer fired at once, and RabbitMQ refused to declare the delay queue, so no refund was ever retried.
    for (const value of ['0', '1000,0,5000', '2147483648', '99999999999999']) {
      expect(problemsOf({ WORKER_RETRY_DELAYS_MS: value }), value).toEqual([
        'WORKER_RETRY_DELAYS_MS: each delay must be a whole number of milliseconds from 1 to 2147483647 (24.8 days)',
      ]);
    }
  });

  it('refuses SANDBOX_PORT equal to PORT: the embedded sandbox and the API cannot share a port', () => {
    expect(problemsOf({ PORT: '5077', SANDBOX_PORT: '5077' })).toEqual([
      'SANDBOX_PORT: is the same port as PORT (5077): set another, or 0 for any free port',
    ]);
    expect(problemsOf({ SANDBOX_PORT: '5000' })).toEqual([
      'SANDBOX_PORT: is the same port as PORT (5000): set another, or 0 for any free port',
    ]);
    expect(loadConfig({ PORT: '0', SANDBOX_PORT: '0' }).sandbox.port).toBe(0);
    // With a Stripe key there is no embedded sandbox to collide with.
    expect(loadConfig({ STRIPE_SECRET_KEY: 'sk_test_x1', SANDBOX_PORT: '5000' }).port).toBe(5000);
  });

  it('refuses METRICS_PUBLIC=false without API keys: no key is accepted then, so /metrics would answer no one', () => {
    const problem =
      'METRICS_PUBLIC: false needs API keys on (API_AUTH=on, or a STRIPE_SECRET_KEY): with authentication off no key is checked, and /metrics would answer 401 to every scrape';
    expect(problemsOf({ METRICS_PUBLIC: 'false' })).toEqual([problem]);
    expect(problemsOf({ METRICS_PUBLIC: 'false', STRIPE_SECRET_KEY: 'sk_test_x1', API_AUTH: 'off' })).toEqual(
      [problem],
    );
    expect(loadConfig({ METRICS_PUBLIC: 'false', API_AUTH: 'on' }).auth.metricsPublic).toBe(false);
    expect(loadConfig({ METRICS_PUBLIC: 'false', STRIPE_SECRET_KEY: 'sk_test_x1' }).auth.metricsPublic).toBe(
      false,
    );
  });

  it('names the API_KEYS entry at fault once, and never echoes a key put where the scopes go', () => {
    const key = 'psk_' + 'k'.repeat(40);
    const other = 'psk_' + 'q'.repeat(40);
    const known = 'payments:write, payments:read, refunds:write, refunds:read';
    expect(problemsOf({ API_KEYS: `shop|payments:read|${key} shop|${other}|${other}` })).toEqual([
      `API_KEYS entry 2: unknown scope(s): (a key); known: ${known}`,
    ]);
    expect(problemsOf({ API_KEYS: `shop|payments:read|${key} shop|payment:write|${other}` })).toEqual([
      `API_KEYS entry 2: unknown scope(s): payment:write; known: ${known}`,
    ]);
    expect(problemsOf({ API_KEYS: `Shop|payments:read|${key}` })).toEqual([
      'API_KEYS entry 1: owner must be 1-63 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit',
    ]);
    expect(problemsOf({ API_KEYS: 'garbage' })).toEqual(['API_KEYS entry 1: expected owner|scopes|key']);
  });

  it('UNOWNED_PAYMENTS_OWNER names an owner, as API keys name theirs; unset (or blank) names none', () => {
    expect(loadConfig({}).auth.unownedPaymentsOwner).toBeNull();
    expect(loadConfig({ UNOWNED_PAYMENTS_OWNER: ' ' }).auth.unownedPaymentsOwner).toBeNull();
    expect(
      loadConfig({ UNOWNED_PAYMENTS_OWNER: 'shop.eu-1', API_AUTH: 'on' }).auth.unownedPaymentsOwner,
    ).toBe('shop.eu-1');
    const shape =
      'UNOWNED_PAYMENTS_OWNER: owner must be 1-63 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit';
    for (const bad of ['Shop', 'shop/eu', '-shop', 'a'.repeat(64)]) {
      expect(problemsOf({ UNOWNED_PAYMENTS_OWNER: bad }), bad).toEqual([shape]);
    }
    // Reported with the other problems of the same start.
    expect(problemsOf({ UNOWNED_PAYMENTS_OWNER: 'Shop', TRUST_PROXY: 'all' })).toHaveLength(2);
  });

  it('says once that a publishable key is not a secret key', () => {
    expect(problemsOf({ STRIPE_SECRET_KEY: 'pk_test_51Secretish' })).toEqual([
      'STRIPE_SECRET_KEY: is a publishable key (pk_...); a secret key (sk_... or rk_...) belongs here',
    ]);
  });

  describe('ALLOWED_HOSTS: more names a service on loopback answers', () => {
    it('is empty by default, and a list of names in lower case when set', () => {
      expect(loadConfig({}).allowedHosts).toEqual([]);
      expect(loadConfig({ ALLOWED_HOSTS: 'Tunnel.Example, *.ngrok.example' }).allowedHosts).toEqual([
        'tunnel.example',
        '*.ngrok.example',
      ]);
    });

    it('refuses at start what would not name one host, naming the variable; "*" never turns the check off', () => {
      const cases: [string, string][] = [
        [
          'tunnel.example,',
          'item 2 of 2 is empty: separate host names with single commas, with nothing after the last',
        ],
        [
          'https://tunnel.example/',
          'item 1 of 1 ("https://tunnel.example/") is a URL: give its host name alone (tunnel.example)',
        ],
        [
          'tunnel.example/webhook',
          'item 1 of 1 ("tunnel.example/webhook") has a path: give the host name alone (tunnel.example)',
        ],
        [
          '*',
          'item 1 of 1 is "*", which would answer every name and undo the check against DNS rebinding: list each host name, or *.domain for its subdomains',
        ],
      ];
      for (const [value, problem] of cases) {
        expect(problemsOf({ ALLOWED_HOSTS: value }), value).toEqual([`ALLOWED_HOSTS: ${problem}`]);
      }
    });

    it('reports a bad list together with the other bad values', () => {
      expect(problemsOf({ PORT: 'eighty', ALLOWED_HOSTS: '*' }).map((p) => p.split(':')[0])).toEqual([
        'PORT',
        'ALLOWED_HOSTS',
      ]);
    });
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ PORT: '', STRIPE_SECRET_KEY: '' }).stripe.mode).toBe('sandbox');
  });

  describe("the README's Configuration table", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## Configuration'));
    const table = section.slice(0, section.indexOf('\n## '));
    /** [variable, its documented default] for each name of each row (`A`, `B` | `1`, `2`). */
    const rows: [string, string][] = [];
    for (const line of table.split('\n')) {
      const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
      const names = [...(cells[1] ?? '').matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!);
      const defaults = (cells[2] ?? '').split(/,\s*(?=`|—)/);
      names.forEach((name, i) => rows.push([name, (names.length > 1 ? defaults[i] : cells[2]) ?? '']));
    }

    it('documents every variable the service reads, and only those', () => {
      expect(rows.map(([name]) => name).sort()).toEqual([...CONFIG_VARIABLES].sort());
    });

    it('gives each variable the default the service uses: setting it to that value changes nothing', () => {
      // With a Stripe key, so that API_AUTH's default is the documented `on` (embedded mode turns it off).
      const base = { STRIPE_SECRET_KEY: 'sk_test_readmedefaults' };
      const defaults = rows.flatMap(([name, cell]) => {
        const literal = /^`([^`]*)`/.exec(cell);
        return literal ? [[name, literal[1]!] as const] : [];
      });
      expect(defaults.length).toBeGreaterThan(25);
      for (const [name, value] of defaults) {
        expect(loadConfig({ ...base, [name]: value }), `${name}=${value}`).toEqual(loadConfig(base));
      }
    });

    // The test above checks each row's first default with a Stripe key; these are the ones it states for the other
    // cases (embedded mode, a worker, the tests), which a newcomer's `npm start` meets first.
    it('gives the defaults it states for embedded mode, a worker and the tests', () => {
      const cell = (name: string) => rows.find(([n]) => n === name)?.[1] ?? '';
      const embedded = loadConfig({});
      expect(cell('HOST')).toContain('`127.0.0.1` auth off');
      expect(embedded.auth.enabled).toBe(false);
      expect(loadConfig({ HOST: '127.0.0.1' })).toEqual(embedded);
      expect(cell('API_AUTH')).toContain('off in embedded mode');
      expect(loadConfig({ API_AUTH: 'off' })).toEqual(embedded);

      const workerEnv = { ROLE: 'worker', RABBITMQ_HOST: 'localhost', STRIPE_SECRET_KEY: 'sk_test_worker' };
      expect(table).toContain('without PORT it takes any free port');
      expect(loadConfig(workerEnv).port).toBe(0);

      expect(cell('VALIDATE_RESPONSES')).toBe('on in tests');
      expect(loadConfig({ NODE_ENV: 'test' }).http.validateResponses).toBe(true);
      expect(embedded.http.validateResponses).toBe(false);
    });
  });
});
