/**
 * A refund request's body is remembered as a hash, so that a retry with the same request_id is told from a reuse
 * with another body. The metadata keys were sorted with the process's locale (String#localeCompare, which follows
 * LANG): a process under LANG=da_DK.UTF-8 sorts `aa` after `b` (Danish reads it as å), one under en_US or in the
 * Docker image (no LANG) before it. The same body sent to two processes of one deployment, or retried after a
 * deploy that changed LANG, then got 409 request_id_conflict for its own refund.
 */
import { describe, expect, it } from 'vitest';
import { postJson } from '../helpers/http.js';
import { postgresAvailable, rabbitAvailable } from '../helpers/services.js';
import { paidIntents, spawnWorker, useCluster } from '../async/support/harness.js';

const ready = (await rabbitAvailable()) && (await postgresAvailable());

describe.skipIf(!ready)('a refund request retried at a process with another locale', () => {
  // The process of the test runs under its own LANG (C.UTF-8 or en_US here: the en-US collation).
  const rig = useCluster('locale', {});

  it.each(['/refund-async', '/refund'])(
    '%s: the same body is the same request, whatever LANG each process runs under',
    async (path) => {
      const [pi] = await paidIntents(rig.svc.url, 1, 5000);
      const body = {
        payment_intent_id: pi,
        amount: 1200,
        request_id: `locale-${path.slice(1)}`,
        metadata: { aa: 'order 1042', b: 'web' },
      };
      const first = await postJson(`${rig.svc.url}${path}`, body);
      expect(first.status, first.text).toBe(path === '/refund' ? 200 : 202);

      const danish = await spawnWorker('api-da', { ...rig.env, ROLE: 'api', LANG: 'da_DK.UTF-8' });
      try {
        const started = danish.logs().find((l) => l.msg === 'service started');
        const retry = await postJson(`${String(started?.url)}${path}`, body);
        expect(retry.status, retry.text).toBe(first.status);
        expect(retry.json.request_id).toBe(body.request_id);
      } finally {
        await danish.kill('SIGTERM');
      }
      // One refund in the ledger and, for the one made at once, at Stripe (no worker runs here).
      const rows = await rig.svc.deps.store.refunds.listForPaymentIntent(pi!);
      expect(rows.map((r) => [r.requestId, r.amount])).toEqual([[body.request_id, 1200]]);
      const atStripe = await rig.stripe.stripe.refunds.list({ payment_intent: pi! });
      expect(atStripe.data.map((r) => r.amount)).toEqual(path === '/refund' ? [1200] : []);
    },
    60_000,
  );
});
