/** How bench runs start and prime the service: its environment and node flags, the sandbox, seeded intents. */

/**
 * The heap settings the Dockerfile gives the service in production (its NODE_OPTIONS), so a bench measures the
 * service as deployed.
 */
export const PRODUCTION_NODE_OPTIONS = '--max-old-space-size=128 --max-semi-space-size=8';

export interface ServiceEnvOptions {
  port: number;
  databaseUrl: string;
  role: 'api' | 'worker' | 'all';
  sandboxBase: string;
  secretKey: string;
  /** Unset: the in-process queue. */
  rabbitmqUrl?: string;
  queuePrefix?: string;
  /** With API_AUTH=on, the one key provisioned (all scopes). */
  apiKey?: string;
}

/**
 * The service's environment in every bench: production-like (warn logs, no response validation) with the
 * limits that would cap what is measured turned off (rate limit, STRIPE_MAX_RPS).
 */
export function serviceEnv(o: ServiceEnvOptions): Record<string, string> {
  return {
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    VALIDATE_RESPONSES: 'false',
    API_AUTH: o.apiKey ? 'on' : 'off',
    RATE_LIMIT_PER_MINUTE: '0',
    STRIPE_SECRET_KEY: o.secretKey,
    STRIPE_API_BASE: o.sandboxBase,
    STRIPE_MAX_RPS: '0',
    DATABASE_URL: o.databaseUrl,
    ROLE: o.role,
    PORT: String(o.port),
    HOST: '127.0.0.1',
    ...(o.apiKey
      ? { API_KEYS: `bench|payments:read,payments:write,refunds:read,refunds:write|${o.apiKey}` }
      : {}),
    ...(o.rabbitmqUrl ? { RABBITMQ_URL: o.rabbitmqUrl } : {}),
    ...(o.queuePrefix ? { QUEUE_PREFIX: o.queuePrefix } : {}),
  };
}

/** Resolves once the sandbox at `base` answers. */
export async function waitForSandbox(base: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    try {
      const res = await fetch(`${base}/_sandbox/stats`);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`the sandbox at ${base} did not start`);
}

/** `n` paid intents, confirmed through the service (16 at a time) so that its ledger knows them. */
export async function seedIntents(
  base: string,
  n: number,
  headers: Record<string, string> = {},
): Promise<string[]> {
  const ids: string[] = [];
  const next = async (): Promise<void> => {
    while (ids.length < n) {
      const slot = ids.push('') - 1;
      const res = await fetch(`${base}/payment-intent`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify({
          amount: 99_999_999,
          currency: 'usd',
          payment_method: 'pm_card_visa',
          confirm: true,
        }),
      });
      const pi = (await res.json()) as Record<string, unknown>;
      if (!res.ok) throw new Error(`POST ${base}/payment-intent: ${res.status} ${JSON.stringify(pi)}`);
      if (pi['status'] !== 'succeeded') throw new Error(`seed intent is ${String(pi['status'])}`);
      ids[slot] = String(pi['paymentIntentId']);
    }
  };
  await Promise.all(Array.from({ length: 16 }, next));
  return ids;
}
