/**
 * Composition root: builds every dependency once from a Config and starts the roles asked for.
 * main.ts and the integration tests both go through startService, never through module state.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from './config/index.js';
import { buildApp } from './http/app.js';
import { notImplemented, type Handlers } from './http/operations.js';
import { loadSpec } from './http/spec.js';

export interface RunningService {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

function createHandlers(): Handlers {
  return {
    createCheckoutSession: notImplemented('createCheckoutSession'),
    getCheckoutSession: notImplemented('getCheckoutSession'),
    createPaymentIntent: notImplemented('createPaymentIntent'),
    getPaymentIntent: notImplemented('getPaymentIntent'),
    createRefund: notImplemented('createRefund'),
    createRefundAsync: notImplemented('createRefundAsync'),
    getRefundStatus: notImplemented('getRefundStatus'),
    handleStripeWebhook: notImplemented('handleStripeWebhook'),
  };
}

function listen(server: Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

export async function startService(config: Config, logger: Logger): Promise<RunningService> {
  const spec = loadSpec();
  const app = buildApp({ config, logger, spec, handlers: createHandlers() });
  const server = createServer(app);
  server.requestTimeout = config.http.requestTimeoutMs;
  const address = await listen(server, config.port, config.host);
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host}:${address.port}`;
  logger.info({ url }, 'HTTP API listening');
  return {
    url,
    port: address.port,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    },
  };
}
