/**
 * Standalone Stripe sandbox: `npm run sandbox`.
 *
 * SANDBOX_PORT (default 12111), SANDBOX_HOST (default 127.0.0.1), SANDBOX_WEBHOOK_URL,
 * SANDBOX_WEBHOOK_SECRET (falls back to the first of STRIPE_WEBHOOK_SECRET), SANDBOX_SECRET_KEY,
 * SANDBOX_REFUND_SETTLE_DELAY_MS, SANDBOX_PUBLIC_URL (base of hosted checkout links), SANDBOX_MAX_OBJECTS
 * (keep only the newest that many of each kind of object; default 0, all), LOG_LEVEL (default info).
 */
import { pino } from 'pino';
import { errorForStderr, scrubSecrets } from '../logger.js';
import { signingSecretOf } from '../webhooks/signing-secrets.js';
import { startSandbox, type SandboxOptions } from './index.js';

function integerFromEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

async function main(): Promise<void> {
  // The service's last-line filter: a webhook URL may carry a basic-auth password (sent as Stripe sends it), and
  // the lines about its deliveries name the URL.
  const logger = pino({
    level: process.env['LOG_LEVEL'] ?? 'info',
    base: { component: 'stripe-sandbox' },
    hooks: { streamWrite: scrubSecrets },
  });
  const webhookUrl = process.env['SANDBOX_WEBHOOK_URL'];
  // STRIPE_WEBHOOK_SECRET lists several while one is being rolled; the first is the one to sign with.
  const webhookSecret =
    process.env['SANDBOX_WEBHOOK_SECRET'] || signingSecretOf(process.env['STRIPE_WEBHOOK_SECRET'] ?? '');
  const options: SandboxOptions = {
    port: integerFromEnv('SANDBOX_PORT', 12111, 0, 65535),
    host: process.env['SANDBOX_HOST'] || '127.0.0.1',
    refundSettleDelayMs: integerFromEnv('SANDBOX_REFUND_SETTLE_DELAY_MS', 1000, 0, 86_400_000),
    logger,
  };
  const maxObjects = integerFromEnv('SANDBOX_MAX_OBJECTS', 0, 0, 100_000_000);
  if (maxObjects > 0) options.maxObjects = maxObjects;
  const publicUrl = process.env['SANDBOX_PUBLIC_URL'];
  if (publicUrl) options.publicUrl = publicUrl;
  const secretKey = process.env['SANDBOX_SECRET_KEY'];
  if (secretKey) options.secretKey = secretKey;
  if (webhookUrl) {
    if (!webhookSecret) {
      throw new Error(
        'SANDBOX_WEBHOOK_URL is set but neither SANDBOX_WEBHOOK_SECRET nor STRIPE_WEBHOOK_SECRET is',
      );
    }
    options.webhookEndpoints = [{ url: webhookUrl, secret: webhookSecret }];
  }

  const sandbox = await startSandbox(options);
  logger.info(
    {
      url: sandbox.url,
      webhookUrl: webhookUrl ?? null,
      acceptedKeys: secretKey ? 'SANDBOX_SECRET_KEY only' : 'any sk_test_ key',
    },
    'Stripe sandbox ready: point the SDK at it with { host, port, protocol: "http" }',
  );
  if (!webhookUrl) {
    logger.info('no webhook endpoint configured; register one with POST /_sandbox/webhook_endpoints');
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping Stripe sandbox');
    sandbox.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(errorForStderr(err, { messageOnly: true }));
  process.exit(1);
});
