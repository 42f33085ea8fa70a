/**
 * `npm run webhook -- <type> ...` (scripts/webhook-trigger.ts), run as a developer would run it,
 * against a running service: signed events are accepted and applied, the answer is printed, and the
 * exit code says whether the service took it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScript } from '../helpers/processes.js';
import { getJson, paidThroughService, postJson, rabbitReady, useRig, until } from './support/rig.js';

const rabbit = await rabbitReady('webhook trigger command');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe.skipIf(!rabbit)('the webhook trigger command', () => {
  const rig = useRig('sqlite', 'trigger');
  let cwd: string;
  beforeAll(async () => {
    // A directory of its own, so a developer's .env in the checkout cannot leak into the test.
    cwd = mkdtempSync(path.join(tmpdir(), 'webhook-trigger-'));
  });
  afterAll(async () => {
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
    return runScript('scripts/webhook-trigger.ts', args, {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? cwd, ...env },
    });
  }

  const stripeEnv = () => ({ STRIPE_SECRET_KEY: rig.secretKey, STRIPE_API_BASE: rig.sandbox.url });

  it('walks a pending refund to succeeded: real object embedded, status overridden, answer printed', async () => {
    const pi = await paidThroughService(rig, 'pm_card_pendingRefund', 2500);
    const made = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi, request_id: 'trigger-1' });
    expect(made.json.refund).toMatchObject({ status: 'pending' });
    const refundId = (made.json.refund as { id: string }).id;

    const eventId = `evt_trigger_test_${Date.now()}`;
    const res = await run(
      [
        'refund.updated',
        '--refund',
        refundId,
        '--status',
        'succeeded',
        '--id',
        eventId,
        '--url',
        `${rig.svc.url}/webhook`,
      ],
      { ...stripeEnv(), STRIPE_WEBHOOK_SECRET: rig.secret },
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`refund.updated ${eventId} (${refundId}, stripe object)`);
    expect(res.stdout).toMatch(/← 200 OK\n\{"success":true\}/);
    expect(res.stdout).not.toContain(rig.secret);

    const status = await until(async () => {
      const r = await getJson(`${rig.svc.url}/refund-status/trigger-1`);
      return r.json.status === 'succeeded' && r.json;
    }, 'the triggered event to settle the refund');
    expect(status).toMatchObject({ refund_id: refundId, amount: 2500 });
    const stored = (await rig.svc.deps.store.inbox.get(eventId))!.payload as {
      data: { object: Record<string, unknown>; previous_attributes?: Record<string, unknown> };
    };
    // The real refund, read from Stripe, with only the status changed.
    expect(stored.data.object).toMatchObject({
      id: refundId,
      amount: 2500,
      payment_intent: pi,
      status: 'succeeded',
    });
    expect(stored.data.previous_attributes).toEqual({ status: 'pending' });

    const again = await run(
      [
        'refund.updated',
        '--refund',
        refundId,
        '--id',
        eventId,
        '--url',
        `${rig.svc.url}/webhook`,
        '--offline',
      ],
      { STRIPE_WEBHOOK_SECRET: rig.secret },
    );
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('{"success":true,"duplicate":true}');
  });

  it('takes the secret from .env and the URL from PORT when they are not given', async () => {
    const port = new URL(rig.svc.url).port;
    writeFileSync(path.join(cwd, '.env'), `STRIPE_WEBHOOK_SECRET=${rig.secret}\nPORT=${port}\n`);
    try {
      const before = await rig.svc.deps.store.inbox.count();
      const res = await run(['customer.created', '--offline']);
      expect(res.code).toBe(0);
      expect(res.stdout).toContain(`→ POST http://127.0.0.1:${port}/webhook  customer.created`);
      expect(res.stdout).toContain('← 200 OK');
      expect(await rig.svc.deps.store.inbox.count()).toBe(before + 1);
    } finally {
      rmSync(path.join(cwd, '.env'));
    }
  });

  it('signs with the first secret when STRIPE_WEBHOOK_SECRET lists several (a secret being rolled)', async () => {
    const other = 'whsec_anotherSecretOfTheRoll000000000';
    const url = `${rig.svc.url}/webhook`;
    const first = await run(['customer.created', '--offline', '--url', url], {
      STRIPE_WEBHOOK_SECRET: `${rig.secret} , ${other}`,
    });
    expect(first.stdout).toContain('← 200 OK');
    expect(first.code).toBe(0);
    // Signed with the first only: the service, which knows only this one, refuses it when it comes second.
    const second = await run(['customer.created', '--offline', '--url', url], {
      STRIPE_WEBHOOK_SECRET: `${other},${rig.secret}`,
    });
    expect(second.stdout).toContain('"code":"signature_invalid"');
    expect(second.code).toBe(1);
    expect(first.stdout + first.stderr + second.stdout + second.stderr).not.toContain(rig.secret);
  });

  it('exits non-zero and prints the problem when the service refuses the signature', async () => {
    const before = await rig.counts();
    const res = await run(['payment_intent.succeeded', '--offline', '--url', `${rig.svc.url}/webhook`], {
      STRIPE_WEBHOOK_SECRET: 'whsec_notTheServicesSecret0000000000',
    });
    expect(res.code).toBe(1);
    expect(res.stdout).toContain('← 400 Bad Request');
    expect(res.stdout).toContain('"code":"signature_invalid"');
    expect(res.stderr).toBe(
      '! the service checks signatures with another secret: start it with the same STRIPE_WEBHOOK_SECRET as this command\n',
    );
    expect(await rig.counts()).toEqual(before);
  });

  it('refuses to run without a secret or with a bad argument, and reports an unreachable service', async () => {
    const noSecret = await run(['refund.updated', '--offline']);
    expect(noSecret.code).toBe(2);
    expect(noSecret.stderr).toContain('STRIPE_WEBHOOK_SECRET');
    const badType = await run(['Refund Updated', '--secret', rig.secret]);
    expect(badType.code).toBe(2);
    expect(badType.stderr).toContain('does not look like a Stripe event type');
    const unknownFlag = await run(['refund.updated', '--secret', rig.secret, '--bogus']);
    expect(unknownFlag.code).toBe(2);
    const down = await run([
      'refund.updated',
      '--offline',
      '--secret',
      rig.secret,
      '--url',
      'http://127.0.0.1:9/webhook',
    ]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('could not reach http://127.0.0.1:9/webhook');
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: npm run webhook -- <event-type>');
  });

  it('--dry-run never prints the client secret of a payment intent read from Stripe', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 1800);
    const secret = (await rig.svc.deps.stripe.paymentIntents.retrieve(pi)).client_secret;
    expect(secret).toMatch(/_secret_/);
    const res = await run(
      ['payment_intent.succeeded', '--payment-intent', pi, '--dry-run', '--secret', rig.secret],
      stripeEnv(),
    );
    expect(res.code).toBe(0);
    expect(res.stdout).not.toContain(secret!);
    expect(res.stdout).not.toContain('_secret_');
    const event = JSON.parse(res.stdout) as { data: { object: Record<string, unknown> } };
    // The rest is the object Stripe has.
    expect(event.data.object).toMatchObject({
      id: pi,
      object: 'payment_intent',
      status: 'succeeded',
      amount: 1800,
    });
    expect(event.data.object).not.toHaveProperty('client_secret');
  });

  it('--dry-run prints a well-formed event without sending it', async () => {
    const before = await rig.svc.deps.store.inbox.count();
    const res = await run(
      [
        'refund.failed',
        '--refund',
        're_madeUp123',
        '--payment-intent',
        'pi_madeUp123',
        '--amount',
        '700',
        '--currency',
        'EUR',
        '--dry-run',
        '--offline',
      ],
      { STRIPE_WEBHOOK_SECRET: rig.secret },
    );
    expect(res.code).toBe(0);
    const event = JSON.parse(res.stdout) as Record<string, unknown>;
    expect(event).toMatchObject({
      object: 'event',
      type: 'refund.failed',
      livemode: false,
      data: {
        object: {
          id: 're_madeUp123',
          object: 'refund',
          amount: 700,
          currency: 'eur',
          payment_intent: 'pi_madeUp123',
          status: 'failed',
          failure_reason: 'expired_or_canceled_card',
        },
      },
    });
    expect(event.id).toMatch(/^evt_/);
    expect(await rig.svc.deps.store.inbox.count()).toBe(before);
  });
});
