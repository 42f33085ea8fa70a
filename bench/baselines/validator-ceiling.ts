/**
 * Baseline 1, the framework ceiling: bare Express 5 + express-openapi-validator over the same
 * openapi.yaml, validating requests exactly as the service does, and answering a fixed JSON body.
 * Nothing is stored, nothing is queued: whatever the service spends above this is its own work.
 *
 * Env: PORT (0 = any; the chosen port is printed as `listening <port>`).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import { parse } from 'yaml';

const specPath = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));
const document = parse(readFileSync(specPath, 'utf8')) as Record<string, unknown>;

const QUEUED = JSON.stringify({
  success: true,
  message: 'Refund request queued successfully',
  request_id: 'unique-id-123',
  status: 'queued',
});
const STATUS = JSON.stringify({
  success: true,
  refund_id: null,
  status: 'queued',
  amount: 1,
  request_id: 'unique-id-123',
  payment_intent_id: 'pi_3PqRsT2eZvKYlo2C1a2b3c4d',
  failure_reason: null,
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: '2026-01-01T00:00:00.000Z',
});

const app = express();
app.disable('x-powered-by');
app.set('query parser', 'simple');
app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' });
});
app.use(express.json({ limit: 16 * 1024, type: ['application/json', 'application/*+json'], strict: true }));
app.use(
  OpenApiValidator.middleware({
    apiSpec: document as never,
    validateApiSpec: true,
    validateRequests: { allErrors: true, allowUnknownQueryParameters: false },
    validateResponses: false,
    validateSecurity: false,
    ignorePaths: /^\/webhook$/,
  }),
);
app.post('/refund-async', (_req, res) => {
  res.status(202).type('application/json').send(QUEUED);
});
app.get('/refund-status/:request_id', (_req, res) => {
  res.status(200).type('application/json').send(STATUS);
});
app.use(
  (
    err: { status?: number; message?: string },
    _req: express.Request,
    res: express.Response,
    _next: express.NextFunction,
  ) => {
    res.status(err.status ?? 500).json({ title: err.message ?? 'error' });
  },
);

const server = app.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1', () => {
  const address = server.address();
  console.log(`listening ${typeof address === 'object' && address ? address.port : ''}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
