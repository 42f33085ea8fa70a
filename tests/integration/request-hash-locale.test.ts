/**
 * A refund request's body is remembered as a hash, so that a retry with the same request_id is told from a reuse
 * with another body. The metadata keys were sorted with the process's locale (String#localeCompare, which follows
 * LANG): a process under LANG=da_DK.UTF-8 sorts `aa` after `b` (Danish reads it as å), one under en_US or in the
 * Docker image (no LANG) before it. The same body sent to two processes of one deployment, or retried after a
 * deploy that changed LANG, then got 409 request_id_conflict for its own refund.
 */
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from '../helpers/http.js';
import { postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import { paidIntents, spawnWorker, useCluster, type WorkerProcess } from '../async/support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());
const DANISH = 'da_DK.UTF-8';

describe.skipIf(!ready)('a refund request retried at a process with another locale', () => {
  // The process of the test runs under its own LANG (C.UTF-8 or en_US here: the en-US collation).
  const rig = useCluster('locale', {});
  let danish: WorkerProcess;
  let danishUrl: string;
  beforeAll(async () => {
    danish = await spawnWorker('api-da', { ...rig.env, ROLE: 'api', LANG: DANISH });
    danishUrl = String(danish.logs().find((l) => l.msg === 'service started')?.url);
  }, 60_000);
  afterAll(async () => {
    await danish?.kill('SIGTERM');
  });

  async function refundOf(requestId: string) {
    const [pi] = await paidIntents(rig.svc.url, 1, 5000);
    return {
      payment_intent_id: pi!,
      amount: 1200,
      request_id: requestId,
      metadata: { aa: 'order 1042', b: 'web' },
    };
  }

  it.each(['/refund-async', '/refund'])(
    '%s: the same body is the same request, whatever LANG each process runs under',
    async (path) => {
      const body = await refundOf(`locale-${path.slice(1)}`);
      const first = await postJson(`${rig.svc.url}${path}`, body);
      expect(first.status, first.text).toBe(path === '/refund' ? 200 : 202);

      const retry = await postJson(`${danishUrl}${path}`, body);
      expect(retry.status, retry.text).toBe(first.status);
      expect(retry.json.request_id).toBe(body.request_id);
      // One refund in the ledger and, for the one made at once, at Stripe (no worker runs here).
      const rows = await rig.svc.deps.store.refunds.listForPaymentIntent(body.payment_intent_id);
      expect(rows.map((r) => [r.requestId, r.amount])).toEqual([[body.request_id, 1200]]);
      const atStripe = await rig.stripe.stripe.refunds.list({ payment_intent: body.payment_intent_id });
      expect(atStripe.data.map((r) => r.amount)).toEqual(path === '/refund' ? [1200] : []);
    },
  );

  it('a request an earlier version hashed under LANG=da_DK is still its own when retried there', async () => {
    const body = await refundOf('locale-earlier');
    expect((await postJson(`${rig.svc.url}/refund-async`, body)).status).toBe(202);
    // The hash an earlier version stored for this body in a process under LANG=da_DK: the keys in Danish order.
    const earlier = execFileSync(
      process.execPath,
      [
        '-e',
        `const b = JSON.parse(process.argv[1]);
         const metadata = Object.fromEntries(Object.entries(b.metadata).sort(([x], [y]) => x.localeCompare(y)));
         const canonical = { payment_intent_id: b.payment_intent_id, amount: b.amount, reason: null, metadata };
         process.stdout.write(require('node:crypto').hash('sha256', JSON.stringify(canonical), 'hex'));`,
        JSON.stringify(body),
      ],
      { env: { PATH: process.env.PATH ?? '', LANG: DANISH } },
    ).toString();
    const client = new pg.Client({ connectionString: rig.db.url });
    await client.connect();
    try {
      // Not the order this version hashes in, or the retry below would prove nothing.
      const stored = await client.query<{ request_hash: string }>(
        'select request_hash from refunds where request_id = $1',
        [body.request_id],
      );
      expect(stored.rows[0]?.request_hash).not.toBe(earlier);
      const updated = await client.query('update refunds set request_hash = $1 where request_id = $2', [
        earlier,
        body.request_id,
      ]);
      expect(updated.rowCount).toBe(1);
    } finally {
      await client.end();
    }

    const retry = await postJson(`${danishUrl}/refund-async`, body);
    expect(retry.status, retry.text).toBe(202);
    const other = await postJson(`${danishUrl}/refund-async`, { ...body, amount: 1300 });
    expect(other.json.code).toBe('request_id_conflict');
  });
});
