/**
 * `npm start`, `npm run worker` and the Docker image run dist/src/main.bundle.mjs (scripts/bundle.mjs),
 * not the files tsc emits, so the bundle itself is built (tsc into a private directory, then bundled,
 * as `npm run build` and the bench do) and used the way a newcomer would: started with no configuration,
 * it serves the contract, validates requests, moves a payment through its embedded sandbox, and finds
 * the files it serves from outside the bundle (Swagger UI, the demo).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSnapshot, type AppSnapshot } from '../../bench/lib/build.js';
import { getJson, postJson } from '../helpers/http.js';
import { freePort, spawnUntil, type Spawned } from '../helpers/processes.js';

const root = path.resolve(import.meta.dirname, '../..');

describe('the bundled service (what npm start runs)', () => {
  let dir: string;
  let proc: Spawned;
  let base: string;
  let app: AppSnapshot;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'bundle-'));
    app = await buildSnapshot(root, dir);
    expect(app.main.endsWith('main.bundle.mjs')).toBe(true);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    proc = await spawnUntil(process.execPath, [app.main], /service started/, {
      cwd: dir,
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: dir,
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: `sqlite:${path.join(dir, 'ledger.db')}`,
        // The build primed the code cache under this process's NODE_OPTIONS; the same flags find it.
        ...(process.env['NODE_OPTIONS'] ? { NODE_OPTIONS: process.env['NODE_OPTIONS'] } : {}),
        LOG_LEVEL: 'debug',
      },
      timeoutMs: 30_000,
    });
  }, 120_000);

  afterAll(async () => {
    await proc?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('starts from the V8 code cache the build wrote next to the bundle', () => {
    const caches = readdirSync(path.dirname(app.main)).filter((f) => f.endsWith('.v8cache'));
    expect(caches.length).toBeGreaterThanOrEqual(1);
    expect(caches.every((f) => f.startsWith('main.bundle.cjs.'))).toBe(true);
    expect(proc.output()).toMatch(/"codeCache":"used"/);
    expect(proc.output()).not.toMatch(/no usable code cache/);
  });

  it('answers health and serves the contract it was built from', async () => {
    expect(await getJson(`${base}/healthz`)).toMatchObject({ status: 200, json: { status: 'ok' } });
    const spec = await getJson(`${base}/openapi.json`);
    expect(spec.status).toBe(200);
    expect(spec.json.openapi).toMatch(/^3\.1/);
  });

  it('validates requests against the contract (400 problem+json naming the field)', async () => {
    const res = await postJson(`${base}/payment-intent`, { amount: -5, currency: 'usd' });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(JSON.stringify(res.json.errors)).toContain('/body/amount');
  });

  it('decodes a UTF-16 JSON body (iconv-lite is loaded from node_modules, not bundled)', async () => {
    const body = Buffer.from(JSON.stringify({ amount: -5, currency: 'usd' }), 'utf16le');
    const res = await fetch(`${base}/payment-intent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-16le' },
      body,
    });
    expect(res.status).toBe(400);
    const problem = (await res.json()) as { errors?: unknown };
    // The validator saw the decoded amount: the body was read, not refused or garbled.
    expect(JSON.stringify(problem.errors)).toContain('/body/amount');
  });

  it('creates, confirms and reads a payment intent through the embedded sandbox', async () => {
    const created = await postJson(`${base}/payment-intent`, {
      amount: 2_000,
      currency: 'usd',
      payment_method: 'pm_card_visa',
      confirm: true,
    });
    expect(created.status).toBe(200);
    expect(created.json).toMatchObject({ success: true, status: 'succeeded' });
    const read = await getJson(`${base}/payment-intent/${String(created.json.paymentIntentId)}`);
    expect(read.json).toMatchObject({
      amount: 2_000,
      currency: 'usd',
      status: 'succeeded',
      amount_refunded: 0,
    });
  });

  it('serves Swagger UI and the demo storefront from files outside the bundle', async () => {
    const docs = await fetch(`${base}/docs/`);
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('swagger-ui');
    const css = await fetch(`${base}/docs/swagger-ui.css`);
    expect(css.status).toBe(200);
    const demo = await fetch(`${base}/demo/`);
    expect(demo.status).toBe(200);
    expect(await demo.text()).toMatch(/<html/i);
  });

  it("prints the frameworks' debug lines with DEBUG set (the bundle's `debug` is a no-op only without it)", async () => {
    const port = await freePort();
    const debug = await spawnUntil(process.execPath, [app.main], /service started/, {
      cwd: dir,
      env: {
        PATH: process.env['PATH'] ?? '',
        HOME: dir,
        PORT: String(port),
        HOST: '127.0.0.1',
        DATABASE_URL: 'sqlite::memory:',
        DEBUG: 'router,body-parser:*',
      },
      timeoutMs: 30_000,
    });
    try {
      const res = await postJson(`http://127.0.0.1:${port}/payment-intent`, { amount: -5, currency: 'usd' });
      expect(res.status).toBe(400);
      // The child wrote its lines before answering; the pipe may hand them over a little later.
      for (let i = 0; i < 50 && !/parse json/.test(debug.output()); i++)
        await new Promise((resolve) => setTimeout(resolve, 100));
      // router's line for the request, and body-parser's for reading its body.
      expect(debug.output()).toMatch(/router dispatching POST \/payment-intent/);
      expect(debug.output()).toMatch(/body-parser:json parse json/);
      expect(debug.output()).not.toMatch(/express:application/);
    } finally {
      await debug.stop();
    }
    // And without DEBUG (the service started in beforeAll), none.
    expect(proc.output()).not.toMatch(/router dispatching/);
  });

  it("builds the bench's baselines the same way, and they run from plain node", async () => {
    // Baseline 1 validates against the snapshot's openapi.yaml; a 400 problem proves it found and loaded it.
    const b1 = await spawnUntil(process.execPath, [app.baselines.validatorCeiling], /listening \d+/, {
      cwd: dir,
      env: { PATH: process.env['PATH'] ?? '', PORT: '0' },
    });
    try {
      const port = /listening (\d+)/.exec(b1.output())![1];
      const bad = await postJson(`http://127.0.0.1:${port}/refund-async`, { payment_intent_id: 'nope' });
      expect(bad.status).toBe(400);
      const ok = await getJson(`http://127.0.0.1:${port}/healthz`);
      expect(ok).toMatchObject({ status: 200, json: { status: 'ok' } });
    } finally {
      await b1.stop();
    }
    const b2 = await spawnUntil(process.execPath, [app.baselines.stripeDirect], /listening \d+/, {
      cwd: dir,
      env: { PATH: process.env['PATH'] ?? '', PORT: '0' },
    });
    await b2.stop();
  });
});
