/**
 * No secret reaches a log line or a command's output, whatever a client or an operator puts where: the service's
 * and the sandbox's logs at debug level (the service has no trace-level lines) while a client sends keys in
 * headers, query strings, bodies, ids and paths, and webhooks arrive signed and not; then the commands (`npm run
 * keys`, `npm run webhook`) and a start refused by its configuration, whose lines bypass the logger.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { getJson, paidIntent, postJson, postSignedWebhook } from '../helpers/http.js';
import { captureLogger } from '../helpers/log-capture.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

const hex = (n: number) => randomBytes(n).toString('hex');
const STRIPE_KEY = `sk_test_noLeakStripe${hex(8)}`;
const WEBHOOK_SECRET = `whsec_noLeakWebhook${hex(8)}`;
const API_KEY = `psk_noLeakApi${randomBytes(32).toString('base64url')}`;
const PUBLISHABLE_KEY = `ppk_noLeakPub${randomBytes(32).toString('base64url')}`;
const PASSWORD = `noLeakPassword${hex(6)}`;

/** The parts that must never be written: each secret's tail, after any prefix a redaction keeps. */
const SECRET_TAILS = [STRIPE_KEY, WEBHOOK_SECRET, API_KEY, PUBLISHABLE_KEY].map((s) => s.slice(-16));

function expectNoSecret(text: string, extra: readonly string[] = []): void {
  for (const tail of [...SECRET_TAILS, PASSWORD, ...extra]) {
    expect(text, `found ${tail}`).not.toContain(tail);
    expect(text.toLowerCase(), `found ${tail} in lower case`).not.toContain(tail.toLowerCase());
  }
}

describe('a running service driven with secrets everywhere', () => {
  let sandbox: Sandbox;
  let sandboxLines: string[];
  let svc: TestService;
  const auth = { authorization: `Bearer ${API_KEY}` };

  beforeAll(async () => {
    const captured = captureLogger('debug');
    sandboxLines = captured.lines;
    sandbox = await startSandbox({ secretKey: STRIPE_KEY, logger: captured.logger });
    svc = await startTestService('sqlite', {
      STRIPE_SECRET_KEY: STRIPE_KEY,
      STRIPE_API_BASE: sandbox.url,
      STRIPE_WEBHOOK_SECRET: `${WEBHOOK_SECRET},whsec_noLeakRolled${PASSWORD}`,
      API_AUTH: 'on',
      API_KEYS: `shop||${API_KEY} shop|publishable|${PUBLISHABLE_KEY}`,
    });
  }, 60_000);
  afterAll(async () => {
    await svc?.stop();
    await sandbox?.close();
  });

  it('logs none of them', async () => {
    const pi = await paidIntent(svc.url, 2000, { headers: auth });
    const made = await postJson(`${svc.url}/payment-intent`, { amount: 500, currency: 'usd' }, auth);
    expect(made.status).toBe(200);
    const clientSecret = made.json.clientSecret as string;
    const clientSecretTail = clientSecret.slice(clientSecret.indexOf('_secret_') + '_secret_'.length);
    expect(clientSecretTail.length).toBeGreaterThan(8);

    // Keys where a key does not belong: wrong headers, the query string, a body, an id, a path.
    const keys = [API_KEY, PUBLISHABLE_KEY, STRIPE_KEY, WEBHOOK_SECRET];
    for (const key of keys) {
      expect(
        (await getJson(`${svc.url}/payment-intent/${pi}`, { authorization: `Bearer ${key}x` })).status,
      ).toBe(401);
      expect((await getJson(`${svc.url}/payment-intent/${pi}`, { authorization: key })).status).toBe(401);
      expect((await getJson(`${svc.url}/payment-intent/${pi}`, { 'x-api-key': key })).status).toBe(401);
      expect((await getJson(`${svc.url}/payment-intent/${pi}?key=${key}`, auth)).status).toBe(400);
      expect((await getJson(`${svc.url}/refund-status/${key}`, auth)).status).toBe(404);
      // An id made by gluing strings together, the key after an underscore.
      expect((await getJson(`${svc.url}/checkout-session?session_id=cs_test_${key}`, auth)).status).toBe(404);
      expect((await getJson(`${svc.url}/payment-intent/pi_${key}`, auth)).status).toBe(404);
      const body = { amount: 700, currency: 'usd', description: `note ${key}`, metadata: { k: key } };
      expect((await postJson(`${svc.url}/payment-intent`, body, auth)).status).toBe(200);
      expect(
        (await postJson(`${svc.url}/payment-intent`, { amount: key, currency: 'usd' }, auth)).status,
      ).toBe(400);
      expect(
        (await postJson(`${svc.url}/payment-intent`, `{"amount": 1, "currency": ${key}}`, auth)).status,
      ).toBe(400);
      expect(
        (await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 1, reason: key }, auth)).status,
      ).toBe(400);
    }
    // A client secret in a URL, in an id and in a request id.
    expect((await getJson(`${svc.url}/payment-intent/${clientSecret}`, auth)).status).toBe(404);
    expect(
      (await getJson(`${svc.url}/payment-intent/${pi}?client_secret=${clientSecret}`, auth)).status,
    ).toBe(400);
    await getJson(`${svc.url}/payment-intent/${pi}`, { ...auth, 'x-request-id': clientSecret });

    // Refunds, sync and through the queue.
    expect((await postJson(`${svc.url}/refund`, { payment_intent_id: pi, amount: 100 }, auth)).status).toBe(
      200,
    );
    const queued = await postJson(`${svc.url}/refund-async`, { payment_intent_id: pi, amount: 100 }, auth);
    expect(queued.status).toBe(202);
    const settled = await eventually(
      () => getJson(`${svc.url}/refund-status/${String(queued.json.request_id)}`, auth),
      (r) => r.json.status === 'succeeded',
    );
    expect(settled.json.status).toBe('succeeded');

    // Webhooks: signed, signed with another secret, a signature header holding a secret.
    const event = JSON.stringify((await svc.deps.stripe.events.list({ limit: 1 })).data[0]);
    expect((await postSignedWebhook(svc.url, WEBHOOK_SECRET, event)).status).toBe(200);
    expect((await postSignedWebhook(svc.url, `whsec_noLeakOther${PASSWORD}`, event)).status).toBe(400);
    const bad = await postJson(`${svc.url}/webhook`, event, { 'stripe-signature': WEBHOOK_SECRET });
    expect(bad.status).toBe(400);

    const logs = [...svc.lines, ...sandboxLines].join('\n');
    expect(logs).toContain('request completed');
    expect(logs).toContain('sandbox request');
    expectNoSecret(logs, [clientSecretTail]);
  }, 120_000);
});

const require = createRequire(import.meta.url);
const TSX = require.resolve('tsx');
const root = path.resolve(import.meta.dirname, '../..');

function run(script: string, args: string[], env: Record<string, string>) {
  return new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, path.join(root, script), ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: cwd, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, output }));
  });
}

let cwd: string;
beforeAll(() => {
  cwd = mkdtempSync(path.join(tmpdir(), 'no-secrets-'));
});
afterAll(() => {
  if (cwd) rmSync(cwd, { recursive: true, force: true });
});

describe('commands given secrets', () => {
  it('npm run keys -- revoke given the key rather than its id does not print the key back', async () => {
    const res = await run('scripts/keys.ts', ['revoke', API_KEY], {
      DATABASE_URL: `sqlite:${path.join(cwd, 'ledger.db')}`,
    });
    expect(res.code).toBe(1);
    expect(res.output).toContain('no active key');
    expectNoSecret(res.output);
  }, 60_000);

  it('npm run webhook to a URL with credentials prints neither', async () => {
    const res = await run(
      'scripts/webhook-trigger.ts',
      [
        'payment_intent.succeeded',
        '--payment-intent',
        'pi_3Abc',
        '--url',
        `http://shop:${PASSWORD}@127.0.0.1:9/webhook?token=${API_KEY}`,
      ],
      { STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET },
    );
    expect(res.code).toBe(1);
    expect(res.output).toContain('→ POST http://shop:[REDACTED]@127.0.0.1:9/webhook');
    expectNoSecret(res.output);
  }, 60_000);

  it('a start refused by its configuration names the bad setting without the password in it', async () => {
    const res = await run('src/main.ts', [], {
      DATABASE_URL: `sqlite:${path.join(cwd, 'main.db')}`,
      ALLOWED_HOSTS: `https://tunnel:${PASSWORD}@shop.tunnel.example`,
      STRIPE_SECRET_KEY: `${STRIPE_KEY}!`,
    });
    expect(res.code).toBe(78);
    expect(res.output).toContain('ALLOWED_HOSTS');
    expect(res.output).toContain('STRIPE_SECRET_KEY');
    expectNoSecret(res.output);
  }, 60_000);
});
