/**
 * `npm run mock` with `Prefer: code=...` is how a consumer tests its error handling before the API exists
 * (README: "any documented status, as problem+json"). Every error answer of the contract is
 * `application/problem+json` only, and Prism picks a response by `Accept` as well: when the status asked for
 * has no content matching `Accept`, Prism falls back to the operation's lowest 2xx
 * (@stoplight/prism-http, NegotiatorHelpers.negotiateOptionsBySpecificCode → negotiateOptionsForUnspecifiedCode)
 * and answers its success example, with nothing saying it did.
 *
 * `Accept: application/json` alone is what the clients README tells other teams to generate send: the
 * openapi-generator Python and Java clients pick the first JSON type of an operation's media types
 * (`select_header_accept` / `selectHeaderAccept`), which is the 2xx's `application/json`. So a Python team asking
 * the mock for `Prefer: code=404` on GET /payment-intent/{id} got `200` and a payment intent; asking for `409` on
 * POST /refund, a refund that succeeded. The real service ignores `Accept` and answers these statuses as
 * problem+json whatever the client accepts; scripts/mock.ts now leaves `Accept` out before Prism sees it.
 */
import path from 'node:path';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateResponse } from '../helpers/contract.js';
import { freePort, spawnUntil, type Spawned } from '../helpers/processes.js';

const require = createRequire(import.meta.url);
const TSX = require.resolve('tsx');
const root = path.resolve(import.meta.dirname, '../..');
const MOCK_KEY = 'psk_mockmockmockmockmockmockmockmockmock12';
let mock: Spawned;
let base: string;

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  mock = await spawnUntil(
    process.execPath,
    ['--import', TSX, path.join(root, 'scripts/mock.ts'), '--port', String(port)],
    /is listening on http:\/\/127\.0\.0\.1/,
    { cwd: root, timeoutMs: 60_000 },
  );
}, 90_000);
afterAll(async () => {
  await mock?.stop();
});

const cases = [
  {
    operationId: 'getPaymentIntent',
    method: 'GET',
    url: '/payment-intent/pi_3PqRsT2eZvKYlo2C1a2b3c4d',
    status: 404,
  },
  {
    operationId: 'createRefund',
    method: 'POST',
    url: '/refund',
    body: { payment_intent_id: 'pi_3PqRsT2eZvKYlo2C1a2b3c4d', amount: 5000 },
    status: 409,
  },
  {
    operationId: 'getRefundStatus',
    method: 'GET',
    url: '/refund-status/unique-id-123',
    status: 503,
  },
] as const;

describe('npm run mock answers the status Prefer: code asks for, whatever JSON the client accepts', () => {
  it.each(cases)('$method $url with Accept: application/json and Prefer: code=$status', async (c) => {
    const res = await fetch(base + c.url, {
      method: c.method,
      headers: {
        authorization: `Bearer ${MOCK_KEY}`,
        // What an openapi-generator Python or Java client sends for these operations.
        accept: 'application/json',
        prefer: `code=${c.status}`,
        ...('body' in c ? { 'content-type': 'application/json' } : {}),
      },
      ...('body' in c ? { body: JSON.stringify(c.body) } : {}),
    });
    const text = await res.text();
    expect(res.status, text).toBe(c.status);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(validateResponse(c.operationId, c.status, JSON.parse(text), 'application/problem+json')).toEqual(
      [],
    );
  });

  it('answers /metrics in text/plain to Accept: application/json, as the service does (Prism alone: 406)', async () => {
    const res = await fetch(`${base}/metrics`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toMatch(/^# HELP /);
  });
});
