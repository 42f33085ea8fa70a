import { describe, expect, it } from 'vitest';
import { decideSettlement, deadLetterReason } from '../../src/queue/settlement.js';
import {
  JITTER_RATIO,
  baseTopologySpecs,
  jitteredDelay,
  levelForAttempt,
  levelTtl,
  queueFamily,
  resolveTopology,
} from '../../src/queue/topology.js';
import { defaultTopology } from '../../src/queue/index.js';

describe('topology', () => {
  it('keeps the original service queue names by default', () => {
    expect(defaultTopology).toEqual({
      requests: 'stripe_refund_requests',
      responses: 'stripe_refund_responses',
      deadLetter: 'stripe_refund_requests.dlq',
      retryPrefix: 'stripe_refund_requests.retry',
      events: 'stripe.events',
    });
    expect(resolveTopology({ requests: 'x' })).toMatchObject({
      requests: 'x',
      responses: 'stripe_refund_responses',
    });
    expect(() => resolveTopology({ events: '' })).toThrow(/events/);
  });

  it('names one delay queue per level and reuses the last level for later attempts', () => {
    const family = queueFamily(defaultTopology.requests, defaultTopology, [1_000, 5_000, 25_000, 120_000]);
    expect(family.deadLetter).toBe('stripe_refund_requests.dlq');
    expect(family.levels.map((l) => l.queue)).toEqual([
      'stripe_refund_requests.retry.1000ms',
      'stripe_refund_requests.retry.5000ms',
      'stripe_refund_requests.retry.25000ms',
      'stripe_refund_requests.retry.120000ms',
    ]);
    expect([1, 2, 3, 4, 5, 9].map((attempt) => levelForAttempt(family, attempt).delayMs)).toEqual([
      1_000, 5_000, 25_000, 120_000, 120_000, 120_000,
    ]);
  });

  it('derives retry and dead-letter queues for other consumed queues', () => {
    const family = queueFamily('billing.events', defaultTopology, [100]);
    expect(family).toEqual({
      queue: 'billing.events',
      deadLetter: 'billing.events.dlq',
      levels: [{ queue: 'billing.events.retry.100ms', delayMs: 100 }],
    });
  });

  it('keeps jitter within the level TTL, so a message waits at most JITTER_RATIO behind the head', () => {
    for (const delay of [1_000, 5_000, 120_000]) {
      expect(jitteredDelay(delay, () => 0)).toBe(delay);
      expect(jitteredDelay(delay, () => 0.999_999)).toBeLessThanOrEqual(levelTtl(delay));
      expect(levelTtl(delay) - delay).toBeLessThanOrEqual(Math.ceil(delay * JITTER_RATIO));
    }
  });

  it('bounds redeliveries on both the requests and the responses queue', () => {
    const specs = baseTopologySpecs(defaultTopology, [1_000], 7);
    expect(specs.find((s) => s.name === 'stripe_refund_requests')).toEqual({
      name: 'stripe_refund_requests',
      deliveryLimit: 7,
      deadLetterTo: 'stripe_refund_requests.dlq',
    });
    expect(specs.find((s) => s.name === 'stripe_refund_responses')?.deliveryLimit).toBe(7);
    expect(specs.map((s) => s.name)).toContain('stripe_refund_responses.dlq');
  });
});

describe('settlement', () => {
  it('retries while attempts remain, then dead-letters with the last reason', () => {
    expect(decideSettlement({ kind: 'retry', reason: 'timeout' }, 0, 3)).toEqual({
      action: 'delay',
      nextAttempt: 1,
      reason: 'timeout',
    });
    expect(decideSettlement({ kind: 'retry', reason: 'timeout' }, 2, 3)).toEqual({
      action: 'dead-letter',
      reason: 'retries exhausted after 3 attempts: timeout',
    });
    expect(decideSettlement({ kind: 'ack' }, 5, 1)).toEqual({ action: 'ack' });
    expect(decideSettlement({ kind: 'dead-letter', reason: 'bad' }, 0, 9)).toEqual({
      action: 'dead-letter',
      reason: 'bad',
    });
  });

  it("reads the dead-letter reason from our header first, then the broker's latest x-death", () => {
    expect(
      deadLetterReason({ headers: { 'x-dead-letter-reason': 'mine', 'x-death': [{ reason: 'expired' }] } }),
    ).toBe('mine');
    expect(
      deadLetterReason({ headers: { 'x-death': [{ reason: 'delivery_limit' }, { reason: 'expired' }] } }),
    ).toBe('delivery_limit');
    expect(deadLetterReason({ headers: {} })).toBeUndefined();
  });
});
