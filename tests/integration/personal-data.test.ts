/**
 * Customers' personal data (e-mail addresses above all) goes where it is needed and nowhere else: not into the
 * service's logs, even at debug, and not into ledger columns nothing reads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { getJson, payOnHostedPage, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';
import { postgresAvailable } from '../helpers/services.js';

let svc: TestService;
let key = '';
const auth = () => ({ authorization: `Bearer ${key}` });

beforeAll(async () => {
  // startTestService logs at debug, the most an operator can turn on.
  svc = await startTestService('sqlite', { API_AUTH: 'on' });
  key = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' })).key;
});
afterAll(async () => {
  await svc?.stop();
});

describe('logs', () => {
  it('a body that is not valid JSON is refused without any of its text reaching the logs', async () => {
    // JSON.parse quotes the text around the character it stumbled on; here, the customer's address.
    const bodies = [
      '{"amount": 1000, "currency": "usd", "receipt_email": jane.doe.7731@example.com}',
      'jane.doe.7731@example.com',
      '{"amount": 1000, "currency": "usd", "receipt_email": "jane.doe.7731@example.com", "confirm": tru}',
    ];
    for (const body of bodies) {
      const res = await postJson(`${svc.url}/payment-intent`, body, auth());
      expect(res.status).toBe(400);
      expect(res.json.detail).toBe('The request body is not valid JSON.');
    }
    const logs = svc.lines.join('\n');
    // The refusals were logged (at debug), with why...
    expect(logs.match(/"request rejected"/g)?.length ?? 0).toBeGreaterThanOrEqual(bodies.length);
    expect(logs).toContain('entity.parse.failed');
    // ...but nothing of the address, nor of the text around it.
    for (const fragment of ['jane', '7731', 'example.com', 'tru}']) expect(logs).not.toContain(fragment);
  });
});

describe('ledger', () => {
  it('keeps no customer e-mail address: GET /checkout-session reads it from Stripe when asked', async () => {
    const created = await postJson(
      `${svc.url}/create-checkout-session`,
      {
        line_items: [
          { price_data: { currency: 'usd', product_data: { name: 'Mug' }, unit_amount: 1200 }, quantity: 1 },
        ],
        success_url: 'https://shop.example.com/ok',
        cancel_url: 'https://shop.example.com/no',
        customer_email: 'sam.lee.4410@example.com',
      },
      auth(),
    );
    expect(created.status).toBe(200);
    const id = created.json.id as string;
    // The hosted page's form sends an address of its own (buyer@example.com); as on Stripe's page, a session made
    // with customer_email is paid with that one.
    expect((await payOnHostedPage(created.json.url as string)).status).toBe(303);
    const session = await eventually(
      () => getJson(`${svc.url}/checkout-session?session_id=${id}`, auth()),
      (r) => r.json.payment_status === 'paid',
    );
    expect(session.json.customer_email).toBe('sam.lee.4410@example.com');
    const rows = [await svc.deps.store.payments.get(id)];
    rows.push(await svc.deps.store.payments.get(session.json.payment_intent as string));
    for (const row of rows) {
      expect(row).not.toBeNull();
      expect(row!.customerEmail).toBeNull();
      expect(JSON.stringify(row)).not.toMatch(/4410|buyer@/);
    }
  });
});

const stores = ['sqlite', ...((await postgresAvailable()) ? (['postgres'] as const) : [])] as const;

describe.each(stores)('ledger during a rolling update [%s]', (db) => {
  it('forgets the e-mail addresses a process of a version before migration 0006 writes beside this one', async () => {
    // Housekeeping every 200 ms instead of every hour.
    const upgraded = await startTestService(db, {}, { housekeepingIntervalMs: 200 });
    try {
      // A checkout's row as the earlier process writes it (on the session's events) once 0006 has run.
      await upgraded.deps.store.payments.insert({
        id: 'cs_written_by_earlier_version',
        kind: 'checkout_session',
        owner: 'shop',
        amount: 1200,
        currency: 'usd',
        status: 'complete',
        customerEmail: 'kim.later.5521@example.com',
      });
      const row = await eventually(
        () => upgraded.deps.store.payments.get('cs_written_by_earlier_version'),
        (r) => r?.customerEmail === null,
        5_000,
      );
      expect(row).toMatchObject({ owner: 'shop', amount: 1200, status: 'complete', customerEmail: null });
    } finally {
      await upgraded.stop();
    }
  });
});
