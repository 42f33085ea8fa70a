import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import Stripe from 'stripe';
import { afterEach, describe, expect, it } from 'vitest';
import { errorOf, startReceiver, waitFor, type Receiver } from './helpers/fixtures.js';

const require = createRequire(import.meta.url);
const CLI = path.resolve(import.meta.dirname, '../../src/sandbox/cli.ts');
const TSX = require.resolve('tsx');

interface Running {
  child: ChildProcess;
  url: string;
  lines: string[];
  exit: Promise<number | null>;
}

async function runCli(env: Record<string, string>): Promise<Running> {
  const child = spawn(process.execPath, ['--import', TSX, CLI], {
    env: { ...process.env, SANDBOX_PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let buffer = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    lines.push(...parts.filter((l) => l.trim() !== ''));
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`cli exited early: ${stderr}`);
      for (const line of lines) {
        const parsed = JSON.parse(line) as { url?: string; msg?: string };
        if (parsed.msg?.startsWith('Stripe sandbox ready') && parsed.url) return parsed.url;
      }
      return undefined;
    },
    'the CLI to announce its URL',
    30_000,
  );
  return { child, url, lines, exit };
}

describe('sandbox CLI', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  it('serves the API, delivers webhooks from env config, logs JSON and stops cleanly on SIGTERM', async () => {
    const receiver: Receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const key = 'sk_test_cliOnlyKey_0000000001';
    const run = await runCli({
      SANDBOX_WEBHOOK_URL: receiver.url,
      SANDBOX_WEBHOOK_SECRET: '',
      STRIPE_WEBHOOK_SECRET: 'whsec_fromStripeEnv',
      SANDBOX_SECRET_KEY: key,
    });
    cleanups.push(async () => {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    });
    const port = Number(new URL(run.url).port);
    const stripe = new Stripe(key, { host: '127.0.0.1', port, protocol: 'http', maxNetworkRetries: 0 });
    const intent = await stripe.paymentIntents.create({ amount: 1234, currency: 'usd' });
    expect(intent.status).toBe('requires_payment_method');

    const wrong = new Stripe('sk_test_notTheCliKey_000000', {
      host: '127.0.0.1',
      port,
      protocol: 'http',
      maxNetworkRetries: 0,
    });
    expect((await errorOf(() => wrong.paymentIntents.list())).statusCode).toBe(401);

    await waitFor(() => receiver.hooks.length >= 1, 'a webhook from the CLI sandbox');
    const hook = receiver.hooks[0];
    const event = stripe.webhooks.constructEvent(
      hook?.body ?? '',
      hook?.signature ?? '',
      'whsec_fromStripeEnv',
    );
    expect(event.type).toBe('payment_intent.created');

    const text = run.lines.join('\n');
    expect(text).not.toContain(key);
    expect(text).not.toContain('whsec_fromStripeEnv');

    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
  });

  it('keeps the password of a webhook URL with basic auth out of its logs', async () => {
    // Stripe (and this sandbox) send a URL's user and password as basic auth, for an endpoint behind a proxy
    // that asks for it; failing deliveries keep the URL on the log lines about them.
    const receiver: Receiver = await startReceiver(() => 500);
    cleanups.push(() => receiver.close());
    const password = 'hookPassw0rdOfTheProxy';
    const key = 'sk_test_cliOnlyKey_0000000002';
    const run = await runCli({
      LOG_LEVEL: 'debug',
      SANDBOX_WEBHOOK_URL: receiver.url.replace('http://', `http://hook:${password}@`),
      SANDBOX_WEBHOOK_SECRET: 'whsec_basicAuthEndpoint',
      SANDBOX_SECRET_KEY: key,
    });
    cleanups.push(async () => {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    });
    const port = Number(new URL(run.url).port);
    const stripe = new Stripe(key, { host: '127.0.0.1', port, protocol: 'http', maxNetworkRetries: 0 });
    await stripe.paymentIntents.create({ amount: 1234, currency: 'usd' });

    await waitFor(
      () => run.lines.some((l) => l.includes('webhook delivery failed')),
      'a failed delivery logged',
    );
    const text = run.lines.join('\n');
    expect(text).toContain('http://hook:[REDACTED]@127.0.0.1');
    expect(text).not.toContain(password);

    run.child.kill('SIGTERM');
    expect(await run.exit).toBe(0);
  });

  it('exits with an error for a bad port', async () => {
    const child = spawn(process.execPath, ['--import', TSX, CLI], {
      env: { ...process.env, SANDBOX_PORT: 'abc' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toContain('SANDBOX_PORT');
  });

  it('refuses a key given as a number without printing the key', async () => {
    // A value pasted into the wrong variable: the refusal quotes what it got, through the logger's filter.
    const key = 'sk_test_pastedInThePort_123456789';
    for (const name of ['SANDBOX_PORT', 'SANDBOX_REFUND_SETTLE_DELAY_MS', 'SANDBOX_MAX_OBJECTS']) {
      const child = spawn(process.execPath, ['--import', TSX, CLI], {
        env: { ...process.env, SANDBOX_PORT: '0', [name]: key },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(code, name).toBe(1);
      expect(output, name).toContain(`${name} must be an integer`);
      expect(output, name).toContain('sk_test_[REDACTED]');
      expect(output, name).not.toContain('pastedInThePort');
    }
  });

  it('refuses a webhook URL it cannot use without printing its password', async () => {
    // Not http(s), and not a URL at all (a "/" in the password ends the host part).
    for (const url of [
      'ftp://hook:ftpPassw0rd@127.0.0.1/webhook',
      'http://hook:pass/w0rd@127.0.0.1/webhook',
    ]) {
      const child = spawn(process.execPath, ['--import', TSX, CLI], {
        env: {
          ...process.env,
          SANDBOX_PORT: '0',
          SANDBOX_WEBHOOK_URL: url,
          SANDBOX_WEBHOOK_SECRET: 'whsec_x',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(code).toBe(1);
      expect(output).toContain('hook:***@127.0.0.1/webhook');
      expect(output).not.toMatch(/Passw0rd|w0rd/);
    }
  });
});
