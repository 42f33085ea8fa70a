/**
 * Process entry point: configuration, logging, start, and graceful shutdown on SIGTERM/SIGINT.
 *
 * Run directly (`tsx src/main.ts`, `node dist/src/main.js`) it starts at once. In the bundle
 * (dist/src/main.bundle.cjs) it only exports {@link main}, which the launcher (src/launch/start.ts, built
 * into dist/src/main.bundle.mjs) calls once it has loaded the bundle with V8's code cache.
 */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadDotenvOrExit, skippedStatementsWarning } from './config/dotenv.js';
import { loadConfigOrExit } from './config/index.js';
import { describeError, explainStartFailure } from './config/start-failure.js';
import { pino } from 'pino';
import { createLogger, errorForStderr } from './logger.js';
import { mountDemo } from './demo/mount.js';
import { startService, StartStopped } from './service.js';

/**
 * Long enough for in-flight Stripe calls to finish (the SDK's own timeout is 20 s by default, and the brokers
 * wait at most that long for their handlers). Give the process a stop grace period above this (compose: 30 s).
 */
/** For the launcher (src/launch/start.ts), which has no logger of its own outside the bundle. */
export { errorForStderr };

export const SHUTDOWN_TIMEOUT_MS = 25_000;

export interface MainOptions {
  /** Called once the service is up and listening, with its base URL. */
  onStarted?: (url: string) => void;
  /** How the launcher used V8's code cache (src/launch/code-cache.ts), for the log. */
  codeCache?: 'used' | 'none' | 'rejected' | 'off';
}

/** Starts the service from the environment (and .env) and stops it cleanly on SIGTERM/SIGINT. */
export async function main(opts: MainOptions = {}): Promise<void> {
  // .env as python-dotenv read it for the Python service; the environment wins over it (src/config/dotenv.ts).
  const dotenv = loadDotenvOrExit();
  const config = loadConfigOrExit(process.env);
  // Pino's default stdout stream, held here so that an exit can wait for its last line (exitAfterLogs).
  const stdout = pino.destination({ dest: 1, sync: false });
  // Handed to pino without its flushSync: pino calls that after every fatal line, and while an earlier write is
  // still in flight it writes the fatal line first, so the line saying why the process stopped was not the last.
  // exitAfterLogs is what waits for the lines to be out.
  const logger = createLogger({ level: config.logLevel }, { write: (line: string) => stdout.write(line) });
  const skipped = skippedStatementsWarning(dotenv);
  if (skipped) logger.warn({ dotenv: dotenv.path, lines: dotenv.invalidLines }, skipped);
  if (opts.codeCache === 'none' || opts.codeCache === 'rejected') {
    logger.info(
      { codeCache: opts.codeCache },
      'no usable code cache for this build and these node flags: compiled afresh (slower start); one is written for the next start if dist/ is writable',
    );
  } else if (opts.codeCache) {
    logger.debug({ codeCache: opts.codeCache }, 'code cache');
  }

  // A signal during start-up stops the start (startService closes what it had opened) and the process exits: a start can wait minutes (a database that does not answer, for up to
  // DATABASE_TIMEOUT_MS; a long index build), and held until then the signal took the orchestrator's SIGKILL. One
  // listener for the whole life: removing the last listener of a signal closes Node's handle for it, and a signal
  // that had arrived but not yet been dispatched (start-up runs without polling for it, e.g. SQLite's synchronous
  // migrations) would be dropped, leaving the process deaf to the SIGTERM it was sent.
  let stopRequested: string | null = null;
  const startAbort = new AbortController();
  let startStopTimer: NodeJS.Timeout | undefined;
  // A stop asked for is a clean stop, exit 0, as one after start-up: the start may already have answered requests
  // (an API process waiting for RabbitMQ listens, and is ready, degraded), and an orchestrator stopping it, or a
  // supervisor (systemd), would take another code for a failure. 1 when closing ran out of time, as a stop's.
  const stoppedBeforeReady = (how: string, code: 0 | 1) => {
    clearTimeout(startStopTimer);
    if (exiting) return;
    logger.warn(
      { signal: stopRequested },
      `stopped before ready: ${stopRequested} arrived during start-up; ${how}; exiting (code ${code})`,
    );
    exitAfterLogs(stdout, code);
  };
  let onSignal = (signal: NodeJS.Signals) => {
    if (stopRequested) {
      logger.warn({ signal }, 'already stopping the start; send SIGKILL to stop at once');
      return;
    }
    stopRequested = signal;
    startAbort.abort();
    // Closing what was opened is bounded as a stop is. Not unref'd: it also keeps the process from ending, code 0,
    // when nothing else is left to wait for.
    startStopTimer = setTimeout(
      () => stoppedBeforeReady('closing what was opened took too long', 1),
      SHUTDOWN_TIMEOUT_MS,
    );
  };
  const listener = (signal: NodeJS.Signals) => onSignal(signal);
  process.on('SIGTERM', listener);
  process.on('SIGINT', listener);

  // An error nothing handled leaves the process in an unknown state: say so in one log line and exit non-zero,
  // so the orchestrator restarts it (unacknowledged refunds are redelivered, leased outbox rows taken over).
  // Node's own report would be a multi-line stack trace on stderr that log collectors split into many events.
  const die = (what: string) => (err: unknown) => {
    logger.fatal({ err }, `${what}: ${describeError(err)}; exiting`);
    exitAfterLogs(stdout, 1);
  };
  process.on('uncaughtException', die('uncaught exception'));
  process.on('unhandledRejection', die('unhandled promise rejection'));

  let service: Awaited<ReturnType<typeof startService>>;
  try {
    service = await startService(config, logger, {
      signal: startAbort.signal,
      // The demo storefront only exists next to the embedded sandbox, where no real money can move.
      extraRoutes: (app, deps) => {
        if (deps.sandbox) mountDemo(app, { authRequired: deps.config.auth.enabled });
      },
    });
  } catch (err) {
    if (stopRequested || err instanceof StartStopped) {
      stoppedBeforeReady('what was opened is closed', 0);
      return;
    }
    // Database unreachable, port taken, address unknown: exit so the orchestrator retries the start later.
    // The line names the setting to change, as the configuration check does for a bad value.
    logger.fatal(
      { err },
      `could not start: ${explainStartFailure(err, {
        port: config.port,
        host: config.host,
        database: config.database,
        sandboxPort: config.stripe.mode === 'sandbox' ? config.sandbox.port : null,
      })}; exiting`,
    );
    exitAfterLogs(stdout, 1);
    return;
  }

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
      exitAfterLogs(stdout, 1);
    }, SHUTDOWN_TIMEOUT_MS);
    timer.unref();
    try {
      await service.close();
      logger.info('stopped cleanly');
      exitAfterLogs(stdout, 0);
    } catch (err) {
      logger.error({ err }, 'error during shutdown');
      exitAfterLogs(stdout, 1);
    }
  }
  clearTimeout(startStopTimer);
  onSignal = (signal) => void shutdown(signal);
  if (stopRequested) void shutdown(stopRequested);
  opts.onStarted?.(service.url);
}

/**
 * Exits once stdout has taken every log line: pino writes asynchronously, and neither process.exit() nor pino's
 * flush() waits for a write still under way, so the line saying why the process stopped could be lost. Bounded,
 * in case stdout no longer drains.
 */
let exiting = false;
function exitAfterLogs(stdout: ReturnType<typeof pino.destination>, code: number): void {
  // The first reason to exit wins: a later error (say, while the logs drain) neither changes the code nor ends
  // the stream twice.
  if (exiting) return;
  exiting = true;
  process.exitCode = code;
  setTimeout(() => process.exit(code), 2_000);
  stdout.once('close', () => process.exit(code));
  stdout.end();
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
    console.error(errorForStderr(err));
    process.exit(1);
  });
}
