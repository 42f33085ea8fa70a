/**
 * Since f8ab175 the filter redacts a key written right after an underscore (`cs_test_` + a key sent as a session
 * id). The ids operators follow a payment by must still come out whole: Stripe's (pi_, re_, ch_, evt_, cs_test_,
 * cs_live_, pm_, seti_), request ids and request_ids with underscores, Stripe idempotency keys, API key ids. Only
 * a key after the underscore is cut.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';

function written(log: (logger: ReturnType<typeof createLogger>) => void): string {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  log(createLogger({ level: 'info' }, sink));
  return lines.join('');
}

const IDS = {
  payment_intent: 'pi_3PkQ2aLkdIwHu7ix0r8cWq1S',
  refund_id: 're_3PkQ2aLkdIwHu7ix0hZJ0k2B',
  charge: 'ch_3PkQ2aLkdIwHu7ix0YtUvB4c',
  event: 'evt_1PkQ2bLkdIwHu7ixg0mL0q8D',
  session: 'cs_test_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ',
  live_session: 'cs_live_b1QpRsTuVwXyZ0a1B2c3D4e5',
  payment_method: 'pm_card_visa',
  setup_intent: 'seti_1PkQ2aLkdIwHu7ixAbCdEfGh',
  reqId: 'req_order_42_batch_7',
  request_id: 'refund_order_42_test_1',
  external: 'stripe:re_3PkQ2aLkdIwHu7ix0hZJ0k2B',
  idempotency_key: 'payment_intent:ad9fb188608f9199c4e6e55d0e7a5dd9',
  key_id: 'key_cfg_0f1e2d3c4b5a6978',
  task: 'task_live_count_disk_test_ok',
};

describe('the logger keeps the ids operators follow', () => {
  it('writes Stripe ids, request ids, idempotency keys and key ids with underscores whole', () => {
    const out = written((logger) => logger.info(IDS, `refund ${IDS.refund_id} of ${IDS.payment_intent}`));
    const line = JSON.parse(out) as Record<string, unknown>;
    for (const [field, id] of Object.entries(IDS)) expect(line[field], field).toBe(id);
    expect(line['msg']).toBe(`refund ${IDS.refund_id} of ${IDS.payment_intent}`);
    expect(out).not.toContain('[REDACTED]');
  });

  it('cuts only the key sent as an id, keeping the prefix it was glued to', () => {
    const key = 'sk_test_51AbCdEfGhIjKlMnOpQrStUv';
    const out = written((logger) =>
      logger.info({ session: `cs_test_${key}`, reqId: IDS.reqId }, `GET /payment-intent/pi_${key}`),
    );
    expect(out).not.toContain('51AbCdEfGhIjKlMnOpQrStUv');
    const line = JSON.parse(out) as Record<string, unknown>;
    expect(line['session']).toBe('cs_test_sk_test_[REDACTED]');
    expect(line['msg']).toBe('GET /payment-intent/pi_sk_test_[REDACTED]');
    expect(line['reqId']).toBe(IDS.reqId);
  });
});
