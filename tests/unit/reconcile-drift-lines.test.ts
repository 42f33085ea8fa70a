/**
 * `npm run reconcile`'s text report: one `DRIFT` line per drift, in an order that does not change between runs of
 * the same ledger (so two runs can be diffed), and no line a drift's detail can forge. A detail quotes what Stripe
 * holds (the owner a payment's metadata names), which anyone who made a payment in the dashboard could set to
 * `x\nDRIFT ...` or a terminal escape.
 */
import { describe, expect, it } from 'vitest';
import { driftLine, sortDrifts, type Drift } from '../../src/reconcile/index.js';

describe('reconcile text report', () => {
  it('prints a detail with line breaks and control characters on one line, escaped', () => {
    const line = driftLine({
      kind: 'payment_missing_in_ledger',
      id: 'pi_1',
      detail: 'Stripe has a payment; owner shop\nDRIFT refund_stuck re_fake: made up\u001b[2J\u2028',
    });
    expect(line.split(/\r\n|\r|\n|\u2028|\u2029/)).toHaveLength(1);
    expect(line).not.toContain('\u001b');
    expect(line).toBe(
      'DRIFT payment_missing_in_ledger pi_1: Stripe has a payment; owner shop\\nDRIFT refund_stuck re_fake: made up\\u001b[2J\\u2028',
    );
  });

  it('leaves an ordinary detail as it is', () => {
    const d: Drift = {
      kind: 'refund_status',
      id: 're_1',
      detail: 'ledger succeeded, Stripe failed (ünïcode ok)',
    };
    expect(driftLine(d)).toBe(`DRIFT refund_status re_1: ${d.detail}`);
  });

  it('orders drifts by kind, then id, whatever order they were found in', () => {
    const found: Drift[] = [
      { kind: 'refund_stuck', id: 'r2', detail: '' },
      { kind: 'payment_status', id: 'pi_b', detail: '' },
      { kind: 'refund_stuck', id: 'r1', detail: '' },
      { kind: 'payment_status', id: 'pi_a', detail: '' },
    ];
    expect(sortDrifts([...found]).map((d) => `${d.kind} ${d.id}`)).toEqual([
      'payment_status pi_a',
      'payment_status pi_b',
      'refund_stuck r1',
      'refund_stuck r2',
    ]);
    expect(sortDrifts([...found].reverse())).toEqual(sortDrifts([...found]));
  });
});
