/**
 * README's Webhooks section lists the event types to select for Stripe's webhook endpoint. An operator who selects
 * only those must get every one the ledger learns from: the list is checked against what the service applies.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CHARGE_REFUNDED_EVENT_TYPE,
  CHECKOUT_SESSION_EVENT_TYPES,
  PAYMENT_INTENT_EVENT_TYPES,
  REFUND_EVENT_TYPES,
} from '../../src/webhooks/apply.js';

const readme = readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');

describe('the webhook events README asks to select', () => {
  it('are exactly those the ledger learns from', () => {
    const after = readme.split('<!-- webhook-events -->')[1];
    expect(after, 'README has the <!-- webhook-events --> marker').toBeDefined();
    const paragraph = after!.trim().split('\n\n')[0]!;
    const listed = [...paragraph.matchAll(/`([a-z_.]+)`/g)].map((m) => m[1]);
    const applied = [
      ...REFUND_EVENT_TYPES,
      CHARGE_REFUNDED_EVENT_TYPE,
      ...PAYMENT_INTENT_EVENT_TYPES,
      ...CHECKOUT_SESSION_EVENT_TYPES,
    ];
    expect([...listed].sort()).toEqual([...applied].sort());
  });
});
