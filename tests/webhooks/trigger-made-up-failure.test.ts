/**
 * `npm run webhook -- refund.failed` (the development trigger) signs an event with the service's secret whose
 * refund is made up: the real refund read from Stripe with its status set to `failed`, or an object of its own. The
 * service applied a final snapshot as it came, so the made-up failure of a refund Stripe made was recorded for
 * good: the row `failed`, its amount released (`amount_refunded` without it, and a refund of that money again let
 * through to Stripe) and announced as not refunded. A snapshot that releases money (failed, canceled) is now read
 * from Stripe first: only Stripe's own word releases an amount, and a refund Stripe does not know changes nothing.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, paidThroughService, postJson, rabbitReady, useRig } from './support/rig.js';

const require = createRequire(import.meta.url);
const TSX = require.resolve('tsx');
const SCRIPT = path.resolve(import.meta.dirname, '../../scripts/webhook-trigger.ts');

const rabbit = await rabbitReady('made-up refund failures from the webhook trigger');

describe.skipIf(!rabbit)('a refund failure the webhook trigger makes up', () => {
  const rig = useRig('sqlite', 'trigger-made-up');
  let cwd: string;
  beforeAll(() => {
    // A directory of its own, so a developer's .env in the checkout cannot leak into the test.
    cwd = mkdtempSync(path.join(tmpdir(), 'webhook-trigger-'));
  });
  afterAll(() => {
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  function trigger(
    args: string[],
    env: Record<string, string>,
  ): Promise<{ code: number | null; out: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        process.execPath,
        ['--import', TSX, SCRIPT, ...args, '--url', `${rig.svc.url}/webhook`],
        {
          cwd,
          env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? cwd, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('exit', (code) => resolve({ code, out }));
    });
  }

  it('leaves a refund Stripe made as Stripe has it, its amount counted', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 2500);
    const made = await postJson(`${rig.svc.url}/refund`, {
      payment_intent_id: pi,
      amount: 1000,
      request_id: 'made-up-failure',
    });
    expect(made.json.refund).toMatchObject({ status: 'succeeded' });
    const refundId = (made.json.refund as { id: string }).id;

    const sent = await trigger(['refund.failed', '--refund', refundId], {
      STRIPE_SECRET_KEY: rig.secretKey,
      STRIPE_API_BASE: rig.sandbox.url,
      STRIPE_WEBHOOK_SECRET: rig.secret,
    });
    expect(sent.code).toBe(0);
    expect(sent.out).toContain(`refund.failed`);
    await rig.settled();

    expect((await getJson(`${rig.svc.url}/refund-status/made-up-failure`)).json).toMatchObject({
      status: 'succeeded',
      refund_id: refundId,
      failure_reason: null,
    });
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded).toBe(1000);
    const over = await postJson(`${rig.svc.url}/refund`, { payment_intent_id: pi, amount: 1501 });
    expect({ status: over.status, code: over.json.code }).toEqual({
      status: 409,
      code: 'amount_exceeds_refundable',
    });
  });

  it('records nothing for a made-up refund Stripe does not know', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 2500);
    const sent = await trigger(
      ['refund.failed', '--refund', 're_madeUpFailure1', '--payment-intent', pi, '--offline'],
      { STRIPE_WEBHOOK_SECRET: rig.secret },
    );
    expect(sent.code).toBe(0);
    await rig.settled();
    expect(await rig.svc.deps.store.refunds.getByStripeId('re_madeUpFailure1')).toBeNull();
    expect(await rig.svc.deps.store.refunds.listForPaymentIntent(pi)).toEqual([]);
  });

  // The snapshot of a refund the ledger knows was applied as it came, its currency included: a made-up one was
  // written to the ledger's row and shown by /refund-status and in what the service announces.
  it("keeps a known refund's currency when a made-up event names another", async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 2500);
    const made = await postJson(`${rig.svc.url}/refund`, {
      payment_intent_id: pi,
      amount: 1000,
      request_id: 'made-up-currency',
    });
    const refundId = (made.json.refund as { id: string }).id;
    const before = (await getJson(`${rig.svc.url}/refund-status/made-up-currency`)).json;
    expect(before).toMatchObject({ status: 'succeeded', currency: 'usd' });

    const sent = await trigger(['refund.updated', '--refund', refundId, '--currency', 'eur'], {
      STRIPE_SECRET_KEY: rig.secretKey,
      STRIPE_API_BASE: rig.sandbox.url,
      STRIPE_WEBHOOK_SECRET: rig.secret,
    });
    expect(sent.code).toBe(0);
    await rig.settled();
    expect((await getJson(`${rig.svc.url}/refund-status/made-up-currency`)).json).toMatchObject({
      status: 'succeeded',
      currency: 'usd',
      amount: 1000,
    });
  });

  // The trigger's refund.updated says succeeded by default: applied as it came, a refund Stripe never made was
  // recorded as one made in the dashboard, its amount counted as refunded for good, and the payment's real refund
  // of what is left refused with 409.
  it('records nothing for a made-up succeeded refund Stripe does not know: the payment is refunded in full', async () => {
    const pi = await paidThroughService(rig, 'pm_card_visa', 2500);
    const sent = await trigger(
      [
        'refund.updated',
        '--refund',
        're_madeUpSuccess1',
        '--payment-intent',
        pi,
        '--amount',
        '2500',
        '--offline',
      ],
      { STRIPE_WEBHOOK_SECRET: rig.secret },
    );
    expect(sent.code).toBe(0);
    await rig.settled();
    expect(await rig.svc.deps.store.refunds.getByStripeId('re_madeUpSuccess1')).toBeNull();
    expect((await getJson(`${rig.svc.url}/payment-intent/${pi}`)).json.amount_refunded ?? 0).toBe(0);
    const all = await postJson(`${rig.svc.url}/refund`, {
      payment_intent_id: pi,
      request_id: 'after-made-up',
    });
    expect({ status: all.status, refund: all.json.refund }).toMatchObject({
      status: 200,
      refund: { status: 'succeeded', amount: 2500 },
    });
  });
});
