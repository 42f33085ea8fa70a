/** Process entry point: configuration, logging, start, and graceful shutdown on SIGTERM/SIGINT. */
import { config as loadDotenv } from 'dotenv';
import { loadConfigOrExit } from './config/index.js';
import { createLogger } from './logger.js';
import { mountDemo } from './demo/mount.js';
import { startService } from './service.js';

loadDotenv({ quiet: true });

/** Long enough for in-flight Stripe calls to finish (the SDK's own timeout is 20 s by default). */
const SHUTDOWN_TIMEOUT_MS = 25_000;

const config = loadConfigOrExit(process.env);

const logger = createLogger({ level: config.logLevel });

// A signal during start-up is honoured once the service is up, so nothing is left half-opened.
let stopRequested: string | null = null;
const onEarlySignal = (signal: NodeJS.Signals) => {
  stopRequested ??= signal;
};
process.on('SIGTERM', onEarlySignal);
process.on('SIGINT', onEarlySignal);

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
process.off('SIGTERM', onEarlySignal);
process.off('SIGINT', onEarlySignal);
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
if (stopRequested) void shutdown(stopRequested);
