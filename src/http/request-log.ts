/**
 * Per-request id and logging: accepts a safe X-Request-Id (or makes one) and echoes it, gives handlers a
 * request-scoped logger, and writes one JSON line per request (id, operation, status, latency).
 * Hand-rolled rather than pino-http: that built a child logger with its redaction for every request,
 * which cost ~9% of the CPU of a small request even when nothing was logged; here the child is only made
 * when something logs.
 */
import type { IncomingMessage } from 'node:http';
import express from 'express';
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { operationIdOf } from './dispatch.js';
import { requestIdFor } from './request-id.js';

declare module 'node:http' {
  interface IncomingMessage {
    id: string;
    log: Logger;
  }
}

export interface Finished {
  operationId: string | undefined;
  status: number;
  seconds: number;
}

const BASE_LOGGER = Symbol('requestLog.logger');
const CHILD_LOGGER = Symbol('requestLog.child');

type LoggedRequest = IncomingMessage & { [BASE_LOGGER]?: Logger; [CHILD_LOGGER]?: Logger };

// `req.log` is one getter on the request prototype every Express app shares, not a property defined on each
// request: defineProperty per request cost ~6 µs and gave every request object a shape of its own. The child
// logger (with the request id) is still built only when something logs.
Object.defineProperty(express.request, 'log', {
  configurable: true,
  enumerable: false,
  get(this: LoggedRequest): Logger | undefined {
    const base = this[BASE_LOGGER];
    if (!base) return undefined;
    return (this[CHILD_LOGGER] ??= base.child({ reqId: this.id }));
  },
});

/** The status a request is logged and counted with when its client went away before the answer was sent. */
export const CLIENT_CLOSED_REQUEST = 499;

/** Operations an orchestrator or Prometheus calls on a timer. */
const PROBE_OPERATIONS: ReadonlySet<string> = new Set(['getHealth', 'getReadiness', 'getMetrics']);

export function requestLog(logger: Logger, onFinish?: (info: Finished) => void): RequestHandler {
  return (req, res, next) => {
    const start = process.hrtime.bigint();
    // As the client sent it: a HEAD is routed as a GET further on.
    const method = req.method;
    const id = requestIdFor(req, res);
    req.id = id;
    (req as LoggedRequest)[BASE_LOGGER] = logger;
    // 'close' rather than 'finish': a response whose client went away before it was sent (a slow Stripe call,
    // a client giving up) never finishes, and it must still be logged and counted, as 499 (the client closed
    // the request; nginx's code), since its handler may have done everything (a payment made at Stripe).
    // `on`, not `once`: a response emits 'close' once (Node guards it with `_closed`), and once's wrapper (a state
    // object and a bound function) was garbage made for every request, three times over with admission's and the
    // timeout's listeners.
    res.on('close', () => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const operationId = operationIdOf(req);
      const status = res.writableFinished ? res.statusCode : CLIENT_CLOSED_REQUEST;
      onFinish?.({ operationId, status, seconds });
      // Probes and scrapes come every few seconds from the orchestrator and Prometheus: at info they would bury
      // the requests that matter. A /readyz 503 names a dependency that is down, which the dependency's own
      // errors already log; it is a warning, not the request's failure.
      const probe = PROBE_OPERATIONS.has(operationId ?? '');
      // A 5xx is a warning: the failure itself is logged where it is handled, once, with its error (the error
      // handler's 'request failed' at error level for a fault of the service's own, 500; a warning for what a
      // dependency or the clock refused: 502 Stripe, 503 Stripe, database or overload, 504). Were the request line an
      // error too, every 500 would be two error lines.
      const level = status >= 500 ? 'warn' : probe && status < 400 ? 'debug' : 'info';
      if (!logger.isLevelEnabled(level)) return;
      logger[level](
        {
          // Under the key every other line of the request carries it (req.log's child), so one filter finds them all.
          reqId: id,
          req: { id, method, url: req.originalUrl },
          operationId,
          res: { statusCode: status },
          responseTime: Math.round(seconds * 1e4) / 10,
        },
        'request completed',
      );
    });
    next();
  };
}
