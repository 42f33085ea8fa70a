/**
 * Per-request id and logging: accepts a safe X-Request-Id (or makes one) and echoes it, gives handlers a
 * request-scoped logger, and writes one JSON line per request (id, operation, status, latency).
 * Hand-rolled rather than pino-http: that built a child logger with its redaction for every request,
 * which cost ~9% of the CPU of a small request even when nothing was logged; here the child is only made
 * when something logs.
 */
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

export function requestLog(logger: Logger, onFinish?: (info: Finished) => void): RequestHandler {
  return (req, res, next) => {
    const start = process.hrtime.bigint();
    const id = requestIdFor(req, res);
    req.id = id;
    let child: Logger | undefined;
    Object.defineProperty(req, 'log', {
      configurable: true,
      enumerable: false,
      get: () => (child ??= logger.child({ reqId: id })),
    });
    res.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const operationId = operationIdOf(req);
      onFinish?.({ operationId, status: res.statusCode, seconds });
      const level = res.statusCode >= 500 ? 'error' : 'info';
      if (!logger.isLevelEnabled(level)) return;
      logger[level](
        {
          req: { id, method: req.method, url: req.originalUrl },
          operationId,
          res: { statusCode: res.statusCode },
          responseTime: Math.round(seconds * 1e4) / 10,
        },
        'request completed',
      );
    });
    next();
  };
}
