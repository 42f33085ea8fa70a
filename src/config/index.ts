/**
 * Reads the environment once into a typed, frozen object. Every bad key is reported together so an
 * operator fixes a deployment in one go instead of one restart per mistake.
 */
// A namespace import, not `import { z }`: esbuild then keeps only what is used here, where the `z` object
// would bring all of zod into the bundle (its ~40 locales alone are ~0.45 MB that every start parses).
import * as z from 'zod';
import { parseProvisionedKeys, validateOwner, type ProvisionedKey } from '../auth/api-keys.js';
import { parseAllowedHosts } from '../http/loopback-host.js';
import { scrubSecrets } from '../logger.js';
import { parseOrigin, parseOwnerOrigins, type OwnerOrigins } from './owner-origins.js';
import { rabbitUrlFromEnv } from '../queue/rabbit-url.js';
import { parseWebhookSecrets } from '../webhooks/signing-secrets.js';

export type Role = 'all' | 'api' | 'worker';

export interface Config {
  readonly nodeEnv: 'development' | 'production' | 'test';
  readonly port: number;
  readonly host: string;
  /**
   * ALLOWED_HOSTS: names (or `*.domain`) a service on loopback without API keys answers besides loopback ones, in
   * lower case; see parseAllowedHosts. Empty: none.
   */
  readonly allowedHosts: readonly string[];
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  readonly role: Role;
  readonly stripe: {
    /** `sandbox`: the in-process Stripe stand-in (embedded default); `remote`: Stripe or a compatible server. */
    readonly mode: 'sandbox' | 'remote';
    readonly secretKey: string | null;
    readonly publishableKey: string | null;
    /**
     * Every secret an event's signature may verify with (STRIPE_WEBHOOK_SECRET, comma-separated while one is
     * being rolled); the first is the one the embedded sandbox and `npm run webhook` sign with. Empty: unset.
     */
    readonly webhookSecrets: readonly string[];
    /** Where the SDK sends requests; null means api.stripe.com. */
    readonly apiBase: URL | null;
    readonly timeoutMs: number;
    readonly maxNetworkRetries: number;
    /**
     * Put before every idempotency key sent to Stripe (with a colon), so ledgers that share a Stripe account (two
     * deployments, or one whose database was reset) never send each other's keys; null: none.
     */
    readonly idempotencyPrefix: string | null;
  };
  /**
   * poolSize: PostgreSQL connections per process (SQLite has one connection). timeoutMs: PostgreSQL only, how
   * long a statement may go unanswered, or a connection take to get, before the request fails with a 503.
   */
  readonly database: { readonly url: string; readonly poolSize: number; readonly timeoutMs: number };
  readonly rabbitmq: {
    readonly url: string | null;
    /** Prepended (with a dot) to every queue and exchange name, so deployments or test runs can share a broker. */
    readonly queuePrefix: string | null;
  };
  readonly worker: {
    readonly prefetch: number;
    readonly maxAttempts: number;
    /** Ceiling of Stripe calls per second made by one worker; null = no ceiling. */
    readonly stripeMaxRps: number | null;
    readonly retryDelaysMs: readonly number[];
  };
  readonly http: {
    readonly jsonLimitBytes: number;
    readonly requestTimeoutMs: number;
    /** Requests at work at once (a request's work counts until it ends, even once answered); 0 = no cap. */
    readonly maxConcurrentRequests: number;
    /**
     * Of those, how many may be requests with a publishable key, all such keys together (0 = no share of their
     * own; absent, as in an app built by hand: half of maxConcurrentRequests). loadConfig always sets it.
     */
    readonly maxConcurrentPublishableRequests?: number;
    /**
     * Of those, how many one owner's requests with secret keys may hold, and (within the publishable share) how many
     * its requests with publishable keys may; 0 or absent: no share per owner.
     */
    readonly maxConcurrentRequestsPerOwner?: number;
    /** Open client connections at once (idle ones included); more are closed as they arrive. */
    readonly maxConnections: number;
    readonly validateResponses: boolean;
    /**
     * Proxies in front of the service whose X-Forwarded-For entries are trusted: the client's address is the entry
     * that many from the right (0: the connection's own address).
     */
    readonly trustProxy: number;
  };
  readonly sandbox: { readonly port: number };
  readonly auth: {
    /** Off only where no real money can move (embedded sandbox, not production), unless asked for. */
    readonly enabled: boolean;
    readonly provisionedKeys: readonly ProvisionedKey[];
    /** Origins browsers may call from: CORS_ORIGINS and every origin OWNER_ORIGINS lists. */
    readonly corsOrigins: readonly string[];
    /**
     * OWNER_ORIGINS: each owner's origins, the only ones its publishable keys' checkouts may return to (an owner not
     * listed: none); null when unset, where every publishable key's checkouts may return to any of CORS_ORIGINS.
     */
    readonly ownerOrigins: OwnerOrigins | null;
    /** Requests per minute per API key (or per client address when auth is off); 0 = no limit. */
    readonly rateLimitPerMinute: number;
    /** Answers 401 per minute per client address before it must present a key known to work; 0 = no limit. */
    readonly authFailuresPerMinute: number;
    readonly metricsPublic: boolean;
    /**
     * UNOWNED_PAYMENTS_OWNER: the owner (as an API key names one) a payment intent or checkout session naming no
     * owner at Stripe is taken as, with API keys on (the Python service's payments, the dashboard's, a Payment
     * Link's); null: such payments are nobody's (404 to every key).
     */
    readonly unownedPaymentsOwner: string | null;
  };
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const str = () => z.preprocess(blankToUndefined, z.string().optional());
const int = (min: number, max: number, def: number) => {
  const error = `must be a whole number from ${min} to ${max}`;
  return z.preprocess(
    blankToUndefined,
    z.coerce.number({ error }).int({ error }).min(min, { error }).max(max, { error }).default(def),
  );
};
const bool = (def: boolean) =>
  z.preprocess(
    blankToUndefined,
    z
      .enum(['true', 'false', '1', '0', 'yes', 'no'])
      .transform((v) => v === 'true' || v === '1' || v === 'yes')
      .default(def),
  );

// Secrets are checked by shape only; messages never echo their values.
const secretKey = z
  .string()
  .refine(
    (v) => !/^pk_/.test(v),
    'is a publishable key (pk_...); a secret key (sk_... or rk_...) belongs here',
  )
  .refine(
    // A pk_ key already has its own, more useful message.
    (v) => /^pk_/.test(v) || /^(sk|rk)_(test|live)_[A-Za-z0-9_]+$/.test(v),
    'must look like sk_test_..., sk_live_... or rk_...',
  );

/** The longest delay Node's timers can wait (2^31 - 1 ms). */
const MAX_TIMER_MS = 2_147_483_647;

const schema = z.object({
  NODE_ENV: z.preprocess(
    blankToUndefined,
    z.enum(['development', 'production', 'test']).default('development'),
  ),
  // Unset: 5000, except for a worker, which only serves health and metrics and so takes any free port.
  PORT: z.preprocess(blankToUndefined, int(0, 65535, -1)),
  HOST: str(),
  // A tunnel's or a same-host reverse proxy's name; see parseAllowedHosts. Names the list's item at fault.
  ALLOWED_HOSTS: z.preprocess(
    blankToUndefined,
    z
      .string()
      .transform((v, ctx) => {
        try {
          return parseAllowedHosts(v);
        } catch (err) {
          ctx.addIssue((err as Error).message);
          return z.NEVER;
        }
      })
      .optional(),
  ),
  LOG_LEVEL: z.preprocess(
    blankToUndefined,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
  ROLE: z.preprocess(blankToUndefined, z.enum(['all', 'api', 'worker']).default('all')),
  STRIPE_SECRET_KEY: z.preprocess(blankToUndefined, secretKey.optional()),
  STRIPE_PUBLISHABLE_KEY: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^pk_(test|live)_[A-Za-z0-9_]+$/, 'must look like pk_test_... or pk_live_...')
      .optional(),
  ),
  // One whsec_... or, while one is being rolled, several separated by commas (see parseWebhookSecrets).
  STRIPE_WEBHOOK_SECRET: z.preprocess(
    blankToUndefined,
    z
      .string()
      .transform((v, ctx) => {
        try {
          return parseWebhookSecrets(v);
        } catch (err) {
          ctx.addIssue((err as Error).message);
          return z.NEVER;
        }
      })
      .optional(),
  ),
  STRIPE_API_BASE: z.preprocess(
    blankToUndefined,
    z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL such as http://127.0.0.1:12111' })
      // The SDK is given the scheme, host and port only: a path (a proxy's prefix), a query or credentials were
      // dropped without a word and every call went elsewhere. Stripe's own /v1 is what the SDK adds anyway.
      .refine((v) => {
        let url: URL;
        try {
          url = new URL(v);
        } catch {
          return true; // the check above says so
        }
        if (!/^https?:$/.test(url.protocol)) return true;
        return (
          /^\/(v1\/?)?$/.test(url.pathname) && !url.search && !url.hash && !url.username && !url.password
        );
      }, 'must be a scheme, host and port only, such as http://127.0.0.1:12111 (the Stripe SDK sends its requests to /v1/... there)')
      .optional(),
  ),
  STRIPE_TIMEOUT_MS: int(100, 120_000, 20_000),
  STRIPE_MAX_NETWORK_RETRIES: int(0, 10, 2),
  // At most 40 characters: Stripe takes keys of up to 255; the few keys longer with it (a refund's, with a long owner,
  // request_id and lowered amount) are sent shortened, with a digest of the whole key (src/stripe/client.ts).
  STRIPE_IDEMPOTENCY_PREFIX: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,40}$/, 'must be 1-40 letters, digits, ".", "-" or "_"')
      .optional(),
  ),
  DATABASE_URL: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^(sqlite:.+|postgres(ql)?:\/\/.+)$/i, 'must be sqlite:<path> or postgres://...')
      .default('sqlite:./data/payments.db'),
  ),
  DATABASE_POOL_SIZE: int(1, 1000, 10),
  // Below REQUEST_TIMEOUT_MS's default, so a request whose database went silent answers with the store's 503
  // (after at most two waits: its statement, then releasing its Idempotency-Key) before the HTTP timeout's.
  DATABASE_TIMEOUT_MS: int(100, 600_000, 10_000),
  RABBITMQ_URL: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^amqps?:\/\/.+/i, 'must be an amqp:// or amqps:// URL')
      .optional(),
  ),
  RABBITMQ_HOST: str(),
  RABBITMQ_PORT: int(1, 65535, 5672),
  RABBITMQ_USER: z.preprocess(blankToUndefined, z.string().default('guest')),
  RABBITMQ_PASSWORD: z.preprocess(blankToUndefined, z.string().default('guest')),
  RABBITMQ_VHOST: z.preprocess(blankToUndefined, z.string().default('/')),
  QUEUE_PREFIX: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,100}$/, 'must be 1-100 letters, digits, ".", "-" or "_"')
      // Every name is `<prefix>.<name>`, and RabbitMQ refuses to declare one starting with "amq.": the service would
      // start, accept refunds, and retry its connection setup forever without ever publishing one.
      .refine(
        (prefix) => !/^amq(\.|$)/.test(prefix),
        'must not be "amq" or begin with "amq." (RabbitMQ reserves amq.*)',
      )
      .optional(),
  ),
  WORKER_PREFETCH: int(1, 1000, 32),
  WORKER_MAX_ATTEMPTS: int(1, 50, 6),
  WORKER_RETRY_DELAYS_MS: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(/^\d+(,\d+)*$/, 'must be a comma-separated list of milliseconds, e.g. 1000,5000,25000')
      // Node's timers (the in-process queue) fire at once past 2^31 - 1 ms, and RabbitMQ refuses a delay queue
      // whose TTL is far above it; 0 would retry without waiting.
      .refine(
        (v) => v.split(',').every((ms) => Number(ms) >= 1 && Number(ms) <= MAX_TIMER_MS),
        `each delay must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS} (24.8 days)`,
      )
      .default('1000,5000,25000,120000'),
  ),
  STRIPE_MAX_RPS: int(0, 100_000, 0),
  JSON_BODY_LIMIT_BYTES: int(1024, 10 * 1024 * 1024, 16 * 1024),
  REQUEST_TIMEOUT_MS: int(1000, 300_000, 30_000),
  // Each request waiting on Stripe holds ~30 kB of heap and a socket: 3,500 of them (answered by the timeout but
  // still calling Stripe) exhausted the image's 128 MB heap. 1,000 leaves room for the worker and the store.
  MAX_CONCURRENT_REQUESTS: int(0, 100_000, 1000),
  // Unset: half of MAX_CONCURRENT_REQUESTS (see loadConfig).
  MAX_CONCURRENT_PUBLISHABLE_REQUESTS: z.preprocess(
    blankToUndefined,
    z.coerce
      .number({ error: 'must be a whole number from 0 to 100000' })
      .int({ error: 'must be a whole number from 0 to 100000' })
      .min(0, { error: 'must be a whole number from 0 to 100000' })
      .max(100_000, { error: 'must be a whole number from 0 to 100000' })
      .optional(),
  ),
  // 0: none. Opt-in: a service with one owner keeps every place for it.
  MAX_CONCURRENT_REQUESTS_PER_OWNER: int(0, 100_000, 0),
  // Each open connection holds ~5 kB outside the heap and a file descriptor, idle or not: 20,000 idle ones took
  // the process from 88 to 186 MB RSS. Well above what a pool of clients behind a load balancer opens.
  MAX_CONNECTIONS: int(1, 1_000_000, 4096),
  VALIDATE_RESPONSES: z.preprocess(blankToUndefined, z.enum(['true', 'false']).optional()),
  // `true` is one proxy: Express's own `true` trusts every entry, so the leftmost, which the client writes itself
  // (a proxy appends the address it saw), was taken as the client's and every per-address limit could be dodged.
  TRUST_PROXY: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(
        /^(true|false|yes|no|[0-9]|10)$/,
        'must be true (one proxy), false, or the number of proxies (0-10)',
      )
      .transform((v) => (v === 'true' || v === 'yes' ? 1 : v === 'false' || v === 'no' ? 0 : Number(v)))
      .default(0),
  ),
  SANDBOX_PORT: int(0, 65535, 0),
  API_AUTH: z.preprocess(blankToUndefined, z.enum(['on', 'off']).optional()),
  API_KEYS: str(),
  // An owner's name, shaped as API keys' owners are (validateOwner); unset: payments naming no owner are nobody's.
  UNOWNED_PAYMENTS_OWNER: z.preprocess(
    blankToUndefined,
    z
      .string()
      .transform((v, ctx) => {
        try {
          return validateOwner(v);
        } catch (err) {
          ctx.addIssue((err as Error).message);
          return z.NEVER;
        }
      })
      .optional(),
  ),
  // The scheme and host in any case (RFC 3986 3.1, 3.2.2): HTTPS://Shop.Example.com names the origin a browser
  // sends as https://shop.example.com (corsMiddleware compares serialized origins).
  CORS_ORIGINS: z.preprocess(
    blankToUndefined,
    z
      .string()
      .regex(
        /^https?:\/\/[^\s,]+(,\s*https?:\/\/[^\s,]+)*$/i,
        'must be a comma-separated list of origins such as https://shop.example.com',
      )
      // Each as a browser writes it in Origin, or refused naming it: the regex let through a user name (the URL
      // parser cut it off, so another origin was allowed than the one written) and a port that is no number
      // (kept as written, it matched no browser's Origin), as OWNER_ORIGINS does not. A path too is refused by
      // parseOrigin, which names the origin: the regex refused it without saying which.
      .transform((v, ctx) => {
        const raw = v.split(',').map((o) => o.trim());
        try {
          return [...new Set(raw.map((o, i) => parseOrigin(o, `origin ${i + 1} of ${raw.length}`)))];
        } catch (err) {
          ctx.addIssue((err as Error).message);
          return z.NEVER;
        }
      })
      .optional(),
  ),
  // Each owner's origins (see parseOwnerOrigins); names the entry at fault.
  OWNER_ORIGINS: z.preprocess(
    blankToUndefined,
    z
      .string()
      .transform((v, ctx) => {
        try {
          return parseOwnerOrigins(v);
        } catch (err) {
          ctx.addIssue((err as Error).message);
          return z.NEVER;
        }
      })
      .optional(),
  ),
  RATE_LIMIT_PER_MINUTE: int(0, 1_000_000, 600),
  AUTH_FAILURES_PER_MINUTE: int(0, 1_000_000, 30),
  METRICS_PUBLIC: bool(true),
});

/** Every variable loadConfig reads (the README's Configuration table documents each). */
export const CONFIG_VARIABLES: readonly string[] = Object.freeze(Object.keys(schema.shape));

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !(o instanceof URL)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * Whether a connection URL reads as written. An "@" in the first path segment, the first query parameter's name or
 * the fragment means a "/", "?" or "#" left unencoded in the password ended the host part early: a password
 * starting with digits (`user:1234/rest@db`) still parses, as host `user` and port 1234, the driver then tries to
 * reach a host that does not exist, and the rest of the password, in the path, is in the "could not start" line.
 */
function isUrl(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  const firstSegment = url.pathname.split('/')[1] ?? '';
  const firstParam = url.search.slice(1).split(/[&=]/)[0] ?? '';
  return !(firstSegment.includes('@') || firstParam.includes('@') || url.hash.includes('@'));
}

/** Parses `env` (normally process.env); throws ConfigError listing every problem. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const parsed = schema.safeParse(env);
  const problems: string[] = [];
  // Variables refused by their own check. The checks across variables below still run, so that one start reports
  // every mistake, but on the others only: each refused variable is read as unset there, and a check that involves
  // one is skipped rather than report a problem made up from its default.
  const refused = new Set<string>();
  let e: z.infer<typeof schema>;
  if (parsed.success) e = parsed.data;
  else {
    for (const i of parsed.error.issues) {
      problems.push(`${i.path.join('.') || '(environment)'}: ${i.message}`);
      refused.add(String(i.path[0] ?? ''));
    }
    const readable = schema.safeParse(
      Object.fromEntries(Object.entries(env).filter(([name]) => !refused.has(name))),
    );
    if (!readable.success) throw new ConfigError(problems);
    e = readable.data;
  }
  /** Reports `problem` unless one of `variables` was refused already. */
  const check = (variables: readonly string[], problem: string) => {
    if (!variables.some((v) => refused.has(v))) problems.push(problem);
  };
  const production = e.NODE_ENV === 'production';
  const KEY = 'STRIPE_SECRET_KEY';
  const RABBIT = [
    'RABBITMQ_URL',
    'RABBITMQ_HOST',
    'RABBITMQ_PORT',
    'RABBITMQ_USER',
    'RABBITMQ_PASSWORD',
    'RABBITMQ_VHOST',
  ];
  if (production && !e.STRIPE_SECRET_KEY) {
    check(
      ['NODE_ENV', KEY],
      'STRIPE_SECRET_KEY: required when NODE_ENV=production (the embedded Stripe sandbox never runs in production)',
    );
  }
  if (production && e.STRIPE_SECRET_KEY && !e.STRIPE_WEBHOOK_SECRET) {
    check(
      ['NODE_ENV', KEY, 'STRIPE_WEBHOOK_SECRET'],
      'STRIPE_WEBHOOK_SECRET: required when NODE_ENV=production so webhooks can be verified',
    );
  }
  // https://api.stripe.com itself is allowed, so a deployment that cannot unset the variable (the compose
  // file's default is the sandbox) can still point a live key at Stripe. Whatever NODE_ENV says: a live key
  // sent elsewhere is a leaked key, and NODE_ENV is the variable most easily left unset.
  if (
    e.STRIPE_SECRET_KEY?.includes('_test_') === false &&
    e.STRIPE_API_BASE &&
    new URL(e.STRIPE_API_BASE).origin !== 'https://api.stripe.com'
  ) {
    check([KEY, 'STRIPE_API_BASE'], 'STRIPE_API_BASE: a live key must not be sent anywhere but Stripe');
  }
  if (e.STRIPE_API_BASE && !e.STRIPE_SECRET_KEY) {
    check([KEY, 'STRIPE_API_BASE'], 'STRIPE_SECRET_KEY: required when STRIPE_API_BASE is set');
  }
  // A live key moves real money: without API keys anyone who reaches the port could pay and refund with it. Refused
  // whatever NODE_ENV says, which is the variable most easily left unset (development); unset, API_AUTH is on
  // with any Stripe key. Test keys move none, so off stays possible with them outside production.
  const liveKey = e.STRIPE_SECRET_KEY !== undefined && !e.STRIPE_SECRET_KEY.includes('_test_');
  if (e.API_AUTH === 'off' && liveKey) {
    check(
      ['API_AUTH', KEY],
      'API_AUTH: cannot be off with a live Stripe key (sk_live_/rk_live_): anyone who reaches the port could pay and refund with real money',
    );
  } else if (production && e.API_AUTH === 'off') {
    check(['API_AUTH', 'NODE_ENV'], 'API_AUTH: cannot be off when NODE_ENV=production');
  }
  let provisionedKeys: ProvisionedKey[] = [];
  try {
    provisionedKeys = e.API_KEYS ? parseProvisionedKeys(e.API_KEYS) : [];
  } catch (err) {
    // Its messages name the entry ("API_KEYS entry 2: ..."); the variable is named once.
    const message = (err as Error).message;
    problems.push(message.startsWith('API_KEYS') ? message : `API_KEYS: ${message}`);
  }
  // The drivers parse these as WHATWG URLs when they first connect: a URL they refuse (a port that is not a
  // number, a space in the host, an unencoded "/" or "@" in the password) would otherwise surface as a failed
  // start or, for RabbitMQ, as reconnect attempts that never end. pg reads "user@/db" (no host) as a socket path.
  if (/^postgres/i.test(e.DATABASE_URL) && !isUrl(e.DATABASE_URL.replace('@/', '@localhost/'))) {
    check(
      ['DATABASE_URL'],
      'DATABASE_URL: is not a valid URL: postgres://user:password@host:5432/database, with special characters in the password percent-encoded',
    );
  }
  const rabbitUrl = rabbitUrlFromEnv(e);
  if (rabbitUrl !== null && !isUrl(rabbitUrl)) {
    check(
      RABBIT,
      e.RABBITMQ_URL
        ? 'RABBITMQ_URL: is not a valid URL: amqp://user:password@host:5672/vhost, with special characters in the password percent-encoded'
        : 'RABBITMQ_HOST: is not a valid host name or IP address',
    );
  }
  if (e.ROLE !== 'all' && rabbitUrl === null) {
    // The in-process queue exists inside one process: an API process's refunds would reach no worker,
    // and a worker process would wait on a queue nobody can publish to.
    check(
      ['ROLE', ...RABBIT],
      `ROLE: ${e.ROLE} needs RabbitMQ (RABBITMQ_URL or RABBITMQ_HOST); without it only ROLE=all runs, with the in-process queue`,
    );
  }
  if (e.ROLE !== 'all' && !e.STRIPE_SECRET_KEY) {
    // Likewise the embedded sandbox: each process would have a Stripe of its own, and a worker, asked to refund a
    // payment the API process's Stripe made, would fail every refund as unknown to Stripe.
    check(
      ['ROLE', KEY],
      `ROLE: ${e.ROLE} needs STRIPE_SECRET_KEY, a Stripe every process reaches (for a stand-in, \`npm run sandbox\` and STRIPE_API_BASE=http://127.0.0.1:12111 with any sk_test_ key); the embedded sandbox serves ROLE=all only`,
    );
  }
  const port = e.PORT >= 0 ? e.PORT : e.ROLE === 'worker' ? 0 : 5000;
  // The embedded sandbox listens first, so the API's own listen would fail, blamed on "another process".
  if (!e.STRIPE_SECRET_KEY && e.SANDBOX_PORT > 0 && e.SANDBOX_PORT === port) {
    check(
      [KEY, 'SANDBOX_PORT', 'PORT', 'ROLE'],
      `SANDBOX_PORT: is the same port as PORT (${port}): set another, or 0 for any free port`,
    );
  }
  const embedded = !e.STRIPE_SECRET_KEY;
  const authEnabled = e.API_AUTH ? e.API_AUTH === 'on' : !(embedded && !production);
  // With authentication off every caller is anonymous, a valid key included.
  if (!e.METRICS_PUBLIC && !authEnabled) {
    check(
      ['METRICS_PUBLIC', 'API_AUTH', KEY, 'NODE_ENV'],
      'METRICS_PUBLIC: false needs API keys on (API_AUTH=on, or a STRIPE_SECRET_KEY): with authentication off no key is checked, and /metrics would answer 401 to every scrape',
    );
  }
  // A publishable key is in the shop's pages: its requests, sending their bodies slowly, could hold every place and
  // the back end's secret keys would be answered 503 overloaded. Their share must leave secret keys room.
  const capped = e.MAX_CONCURRENT_REQUESTS > 0;
  const publishableShare =
    e.MAX_CONCURRENT_PUBLISHABLE_REQUESTS ?? (capped ? Math.floor(e.MAX_CONCURRENT_REQUESTS / 2) : 0);
  if (capped && publishableShare >= e.MAX_CONCURRENT_REQUESTS) {
    check(
      ['MAX_CONCURRENT_PUBLISHABLE_REQUESTS', 'MAX_CONCURRENT_REQUESTS'],
      `MAX_CONCURRENT_PUBLISHABLE_REQUESTS: must be below MAX_CONCURRENT_REQUESTS (${e.MAX_CONCURRENT_REQUESTS}), so that requests with a secret key always find a place; 0 = no separate limit`,
    );
  }
  // One owner's requests (secret keys' whose bodies come slowly, say) must not be able to hold every place.
  const perOwner = e.MAX_CONCURRENT_REQUESTS_PER_OWNER;
  if (capped && perOwner >= e.MAX_CONCURRENT_REQUESTS) {
    check(
      ['MAX_CONCURRENT_REQUESTS_PER_OWNER', 'MAX_CONCURRENT_REQUESTS'],
      `MAX_CONCURRENT_REQUESTS_PER_OWNER: must be below MAX_CONCURRENT_REQUESTS (${e.MAX_CONCURRENT_REQUESTS}), so that one owner's requests cannot hold every place; 0 = no share per owner`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const retryDelaysMs = e.WORKER_RETRY_DELAYS_MS.split(',').map(Number);
  return deepFreeze<Config>({
    nodeEnv: e.NODE_ENV,
    port,
    // Without API keys anyone who reaches the port can pay and refund: by default only this machine can. A service
    // with auth off on every address (npm start on a laptop) was open to everyone on its network.
    host: e.HOST ?? (authEnabled ? '0.0.0.0' : '127.0.0.1'),
    allowedHosts: e.ALLOWED_HOSTS ?? [],
    logLevel: e.LOG_LEVEL,
    role: e.ROLE,
    stripe: {
      mode: e.STRIPE_SECRET_KEY ? 'remote' : 'sandbox',
      secretKey: e.STRIPE_SECRET_KEY ?? null,
      publishableKey: e.STRIPE_PUBLISHABLE_KEY ?? null,
      webhookSecrets: e.STRIPE_WEBHOOK_SECRET ?? [],
      apiBase: e.STRIPE_API_BASE ? new URL(e.STRIPE_API_BASE) : null,
      timeoutMs: e.STRIPE_TIMEOUT_MS,
      maxNetworkRetries: e.STRIPE_MAX_NETWORK_RETRIES,
      idempotencyPrefix: e.STRIPE_IDEMPOTENCY_PREFIX ?? null,
    },
    database: { url: e.DATABASE_URL, poolSize: e.DATABASE_POOL_SIZE, timeoutMs: e.DATABASE_TIMEOUT_MS },
    rabbitmq: { url: rabbitUrl, queuePrefix: e.QUEUE_PREFIX ?? null },
    worker: {
      prefetch: e.WORKER_PREFETCH,
      maxAttempts: e.WORKER_MAX_ATTEMPTS,
      stripeMaxRps: e.STRIPE_MAX_RPS > 0 ? e.STRIPE_MAX_RPS : null,
      retryDelaysMs,
    },
    http: {
      jsonLimitBytes: e.JSON_BODY_LIMIT_BYTES,
      requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
      maxConcurrentRequests: e.MAX_CONCURRENT_REQUESTS,
      maxConcurrentPublishableRequests: publishableShare,
      maxConcurrentRequestsPerOwner: perOwner,
      maxConnections: e.MAX_CONNECTIONS,
      validateResponses: e.VALIDATE_RESPONSES ? e.VALIDATE_RESPONSES === 'true' : e.NODE_ENV === 'test',
      trustProxy: e.TRUST_PROXY,
    },
    sandbox: { port: e.SANDBOX_PORT },
    auth: {
      enabled: authEnabled,
      provisionedKeys,
      corsOrigins: [
        ...new Set([...(e.CORS_ORIGINS ?? []), ...[...(e.OWNER_ORIGINS?.values() ?? [])].flat()]),
      ],
      ownerOrigins: e.OWNER_ORIGINS ?? null,
      rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
      authFailuresPerMinute: e.AUTH_FAILURES_PER_MINUTE,
      metricsPublic: e.METRICS_PUBLIC,
      unownedPaymentsOwner: e.UNOWNED_PAYMENTS_OWNER ?? null,
    },
  });
}

/** For entry points: the config, or every problem printed and exit code 78 (EX_CONFIG). */
export function loadConfigOrExit(env: Record<string, string | undefined>): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      // Through the logger's filter: a value may be quoted (ALLOWED_HOSTS given a URL with a password in it).
      console.error(scrubSecrets(err.message));
      process.exit(78);
    }
    throw err;
  }
}
