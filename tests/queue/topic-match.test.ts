import { describe, expect, it } from 'vitest';
import { topicMatches } from '../../src/queue/index.js';

describe('topicMatches', () => {
  it.each([
    ['payment_intent.*', 'payment_intent.succeeded', true],
    ['payment_intent.*', 'payment_intent.payment_failed', true],
    ['payment_intent.*', 'payment_intent', false],
    ['payment_intent.*', 'payment_intent.a.b', false],
    ['charge.#', 'charge', true],
    ['charge.#', 'charge.refund.updated', true],
    ['charge.#', 'charges.refunded', false],
    ['#', 'anything.at.all', true],
    ['#', '', true],
    ['*.refunded', 'charge.refunded', true],
    ['*.refunded', 'refunded', false],
    ['#.updated', 'charge.refund.updated', true],
    ['#.updated', 'updated', true],
    ['a.#.z', 'a.z', true],
    ['a.#.z', 'a.b.c.z', true],
    ['a.#.z', 'a.b.c', false],
    ['checkout.session.completed', 'checkout.session.completed', true],
    ['checkout.session.completed', 'checkout.session.expired', false],
  ])('%s against %s is %s', (pattern, key, expected) => {
    expect(topicMatches(pattern, key)).toBe(expected);
  });

  it('stays fast on patterns with many # (memoised)', () => {
    const key = Array.from({ length: 40 }, (_, i) => `w${i}`).join('.');
    expect(topicMatches('#.#.#.#.#.#.#.#.nope', key)).toBe(false);
  });
});
