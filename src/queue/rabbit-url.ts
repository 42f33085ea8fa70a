/**
 * Where RabbitMQ is, from the environment. `RABBITMQ_URL` wins; otherwise the original service's
 * `RABBITMQ_HOST/PORT/USER/PASSWORD` (plus `RABBITMQ_VHOST`) are assembled into a URL. Neither set
 * means embedded mode (the in-process driver), so the result is null.
 */
export interface RabbitEnv {
  RABBITMQ_URL?: string;
  RABBITMQ_HOST?: string;
  RABBITMQ_PORT?: string | number;
  RABBITMQ_USER?: string;
  RABBITMQ_PASSWORD?: string;
  RABBITMQ_VHOST?: string;
}

export function rabbitUrlFromEnv(env: RabbitEnv): string | null {
  const explicit = env.RABBITMQ_URL?.trim();
  if (explicit) {
    if (!/^amqps?:\/\//i.test(explicit))
      throw new TypeError('RABBITMQ_URL must start with amqp:// or amqps://');
    return explicit;
  }

  const host = env.RABBITMQ_HOST?.trim();
  if (!host) return null;

  const port = parsePort(env.RABBITMQ_PORT);
  // Encoded so that a password containing '@', ':' or '/' cannot change the meaning of the URL.
  const user = encodeURIComponent(env.RABBITMQ_USER ?? 'guest');
  const password = encodeURIComponent(env.RABBITMQ_PASSWORD ?? 'guest');
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  const vhost = env.RABBITMQ_VHOST;
  const vhostPart =
    vhost === undefined || vhost === '' || vhost === '/' ? '' : `/${encodeURIComponent(vhost)}`;
  return `amqp://${user}:${password}@${hostPart}:${port}${vhostPart}`;
}

function parsePort(raw: string | number | undefined): number {
  if (raw === undefined || raw === '') return 5672;
  const port = typeof raw === 'number' ? raw : Number(raw.trim());
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new TypeError(`RABBITMQ_PORT must be an integer between 1 and 65535, got ${JSON.stringify(raw)}`);
  }
  return port;
}
