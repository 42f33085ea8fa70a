/** Process entry point: configuration, logging, start, and graceful shutdown on SIGTERM/SIGINT. */
import { config as loadDotenv } from 'dotenv';
import { ConfigError, loadConfig } from './config/index.js';
import { createLogger } from './logger.js';
import { startService } from './service.js';

loadDotenv({ quiet: true });

let config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(78); // EX_CONFIG
  }
  throw err;
}

const logger = createLogger({ level: config.logLevel });
const service = await startService(config, logger);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  const timer = setTimeout(() => {
    logger.error('shutdown took too long; exiting');
    process.exit(1);
  }, 25_000);
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
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
