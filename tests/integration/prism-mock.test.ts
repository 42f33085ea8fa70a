/**
 * `npm run mock` serves the contract with Prism; front-end developers rely on its answers matching
 * openapi.yaml, and on choosing examples and statuses with the Prefer header.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPaymentsClient } from '../../client/index.js';
import { operations, validateResponse } from '../helpers/contract.js';
import { freePort, spawnUntil, type Spawned } from '../helpers/processes.js';

const root = path.resolve(import.meta.dirname, '../..');
const MOCK_KEY = 'psk_mockmockmockmockmockmockmockmockmock12';
let prism: Spawned;
let base: string;

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  prism = await spawnUntil(
    path.join(root, 'node_modules/.bin/prism'),
    ['mock', 'openapi.yaml', '--host', '127.0.0.1', '--port', String(port), '--errors'],
    /Prism is listening/,
    { cwd: root, timeoutMs: 60_000 },
  );
}, 90_000);
afterAll(async () => {
  await prism?.stop();
});

type Json = Record<string, unknown>;

function firstExample(media: Json | undefined): unknown {
  const examples = media?.examples as Record<string, { value: unknown }> | undefined;
  return examples ? Object.values(examples)[0]!.value : undefined;
}

function buildRequest(op: Json, p: string): { url: string; init: RequestInit } {
  let url = p;
  const query = new URLSearchParams();
  // Prism checks that the documented security is present (not the key's value).
  const headers: Record<string, string> = { authorization: `Bearer ${MOCK_KEY}` };
  for (const param of (op.parameters ?? []) as Json[]) {
    const resolved = param;
    if (resolved.$ref) continue;
    const value = String(resolved.example);
    if (resolved.in === 'path') url = url.replace(`{${resolved.name as string}}`, value);
    if (resolved.in === 'query' && resolved.required) query.set(resolved.name as string, value);
    if (resolved.in === 'header') headers[resolved.name as string] = value;
  }
  url = url.replace('{payment_intent_id}', 'pi_3PqRsT2eZvKYlo2C1a2b3c4d');
  const body = firstExample(
    ((op.requestBody as Json | undefined)?.content as Json | undefined)?.['application/json'] as Json,
  );
  const qs = query.toString();
  return {
    url: `${url}${qs ? `?${qs}` : ''}`,
    init: {
      method: body === undefined ? 'GET' : 'POST',
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    },
  };
}

describe('Prism mock of openapi.yaml', () => {
  it.each(operations().map((o) => [o.operationId, o] as const))(
    '%s answers a success that matches the contract',
    async (operationId, o) => {
      const { url, init } = buildRequest(o.op, o.path);
      const res = await fetch(base + url, init);
      expect(res.status).toBeLessThan(300);
      const text = await res.text();
      const body: unknown = res.headers.get('content-type')?.startsWith('text/plain')
        ? text
        : JSON.parse(text);
      expect(validateResponse(operationId, res.status, body)).toEqual([]);
    },
  );

  it.each(['queued', 'pending', 'succeeded', 'failed'])(
    'lets a front end pick the %s refund state by example name',
    async (state) => {
      const res = await fetch(`${base}/refund-status/unique-id-123`, {
        headers: { Prefer: `example=${state}`, authorization: `Bearer ${MOCK_KEY}` },
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { status: string };
      expect(body.status).toBe(state);
      expect(validateResponse('getRefundStatus', 200, body)).toEqual([]);
    },
  );

  it('lets a front end ask for an error status, answered as problem+json', async () => {
    const res = await fetch(`${base}/payment-intent/pi_missing`, {
      headers: { Prefer: 'code=404', authorization: `Bearer ${MOCK_KEY}` },
    });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
    expect(validateResponse('getPaymentIntent', 404, await res.json(), 'application/problem+json')).toEqual(
      [],
    );
  });

  // Only a POST with an Idempotency-Key is ever replayed. The GETs' 400, 403 and 404 (and the webhook's 400) were
  // declared with the Idempotent-Replayed header and its example `true`, so the mock said every GET 404 was a replay.
  const neverReplayed = operations().filter(
    (o) =>
      !((o.op.parameters ?? []) as Json[]).some((p) => p.$ref === '#/components/parameters/IdempotencyKey'),
  );
  it.each(neverReplayed.map((o) => [o.operationId, o] as const))(
    "%s: no answer says Idempotent-Replayed, as the service's never does",
    async (_operationId, o) => {
      const statuses = Object.keys(o.op.responses as Json).filter((s) => /^\d{3}$/.test(s));
      expect(statuses.length).toBeGreaterThan(0);
      for (const code of statuses) {
        const { url, init } = buildRequest(o.op, o.path);
        const res = await fetch(base + url, {
          ...init,
          headers: { ...(init.headers as Record<string, string>), Prefer: `code=${code}` },
        });
        await res.arrayBuffer();
        expect(res.status, `Prefer: code=${code}`).toBe(Number(code));
        expect(res.headers.get('idempotent-replayed'), `${code}`).toBeNull();
      }
    },
  );

  it("the typed client's refundAndWait ends against the mock once told which example to answer (README)", async () => {
    const mock = createPaymentsClient({ baseUrl: base, apiKey: MOCK_KEY });
    mock.use({
      onRequest: ({ request }) => {
        if (request.method === 'GET') request.headers.set('Prefer', 'example=succeeded');
        return request;
      },
    });
    const done = await mock.refundAndWait(
      { payment_intent_id: 'pi_3PqRsT2eZvKYlo2C1a2b3c4d' },
      { timeoutMs: 10_000, intervalMs: 50 },
    );
    expect(done).toMatchObject({ status: 'succeeded', request_id: 'unique-id-123' });
    expect(validateResponse('getRefundStatus', 200, done)).toEqual([]);
  });

  it('rejects a request that breaks the contract', async () => {
    const res = await fetch(`${base}/payment-intent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${MOCK_KEY}` },
      body: JSON.stringify({ amount: -1 }),
    });
    // Prism answers one of the contract's own validation problems (422 is preferred when documented).
    expect([400, 422]).toContain(res.status);
    expect(res.headers.get('content-type')).toMatch(/problem\+json/);
  });
});
