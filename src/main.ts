/**
 * Process entry point: configuration, logging, start, and graceful shutdown on SIGTERM/SIGINT.
 *
 * Run directly (`tsx src/main.ts`, `node dist/src/main.js`) it starts at once. In the bundle
 * (dist/src/main.bundle.cjs) it only exports {@link main}, which the launcher (src/launch/start.ts, built
 * into dist/src/main.bundle.mjs) calls once it has loaded the bundle with V8's code cache.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { config as loadDotenv } from 'dotenv';
import { loadConfigOrExit } from './config/index.js';
import { createLogger } from './logger.js';
import { mountDemo } from './demo/mount.js';
import { startService } from './service.js';

/**
 * Long enough for in-flight Stripe calls to finish (the SDK's own timeout is 20 s by default, and the brokers
 * wait at most that long for their handlers). Give the process a stop grace period above this (compose: 30 s).
 */
export const SHUTDOWN_TIMEOUT_MS = 25_000;

export interface MainOptions {
  /** Called once the service is up and listening, with its base URL. */
  onStarted?: (url: string) => void;
  /** How the launcher used V8's code cache (src/launch/code-cache.ts), for the log. */
  codeCache?: 'used' | 'none' | 'rejected' | 'off';
}

/** Starts the service from the environment (and .env) and stops it cleanly on SIGTERM/SIGINT. */
export async function main(opts: MainOptions = {}): Promise<void> {
  loadDotenv({ quiet: true });
  const config = loadConfigOrExit(process.env);
  const logger = createLogger({ level: config.logLevel });
  if (opts.codeCache === 'none' || opts.codeCache === 'rejected') {
    logger.info(
      { codeCache: opts.codeCache },
      'no usable code cache for this build and these node flags: compiled afresh (slower start); one is written for the next start if dist/ is writable',
    );
  } else if (opts.codeCache) {
    logger.debug({ codeCache: opts.codeCache }, 'code cache');
  }

  // A signal during start-up is honoured once the service is up, so nothing is left half-opened. One listener
  // for the whole life: removing the last listener of a signal closes Node's handle for it, and a signal that
  // had arrived but not yet been dispatched (start-up runs without polling for it, e.g. SQLite's synchronous
  // migrations) would be dropped, leaving the process deaf to the SIGTERM it was sent.
  let stopRequested: string | null = null;
  let onSignal = (signal: NodeJS.Signals) => {
    stopRequested ??= signal;
  };
  const listener = (signal: NodeJS.Signals) => onSignal(signal);
  process.on('SIGTERM', listener);
  process.on('SIGINT', listener);

  const service = await startService(config, logger, {
    // The demo storefront only exists next to the embedded sandbox, where no real money can move.
    extraRoutes: (app, deps) => {
      if (deps.sandbox) mountDemo(app, { authRequired: deps.config.auth.enabled });
    },
  });

  let stopping = false;
  async function shutdown(signal: string): Promise<void> {
    if (stopping) {
      logger.warn({ signal }, 'already shutting down; send SIGKILL to stop at once');
      return;
    }
    stopping = true;
    // Order (in service.close): stop consuming and let in-flight refunds finish, stop accepting HTTP,
    // flush the outbox, close the broker and the store. Unfinished messages are redelivered by RabbitMQ.
    logger.info({ signal }, 'shutting down');
    const timer = setTimeout(() => {
      logger.error('shutdown took too long; exiting (unacknowledged refunds will be redelivered)');
      process.exit(1);
    }, SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    try {
      await service.close();
      logger.info('stopped cleanly');
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'error during shutdown');
      process.exit(1);
    }
  }
  onSignal = (signal) => void shutdown(signal);
  if (stopRequested) void shutdown(stopRequested);
  opts.onStarted?.(service.url);
}

function runDirectly(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (runDirectly()) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
