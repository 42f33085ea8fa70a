/**
 * A service on PostgreSQL whose connections carry an application_name of the test's own, a Stripe of the test's
 * own that sends it no webhooks (the test applies each view itself), and an admin connection that sees which of
 * the service's statements wait for a lock: the rig of tests that make an interleaving deterministic.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type Stripe from 'stripe';
import { afterAll, beforeAll } from 'vitest';
import { startSharedStripe, startTestService, type SharedStripe, type TestService } from './service.js';
import { POSTGRES_URL } from './services.js';

export interface PgLockRig {
  /** The service (set in beforeAll). */
  readonly svc: TestService;
  /** Whether one of the service's sessions waits for a lock in a statement matching `like`. */
  waitsIn(like: string): Promise<boolean>;
  /** A checkout session of one 42.00 usd lamp, made at Stripe (not through the service). */
  lampSession(metadata?: Record<string, string>): Promise<Stripe.Checkout.Session>;
}

/** Registers the rig's beforeAll and afterAll in the calling describe; `prefix` starts the application_name. */
export function usePgLockRig(prefix: string): PgLockRig {
  const appName = `${prefix}_${randomBytes(4).toString('hex')}`;
  let stripeSandbox: SharedStripe | undefined;
  let svc: TestService | undefined;
  let admin: pg.Client | undefined;
  beforeAll(async () => {
    const url = new URL(POSTGRES_URL);
    url.searchParams.set('application_name', appName);
    stripeSandbox = await startSharedStripe();
    svc = await startTestService('postgres', {
      DATABASE_URL: url.toString(),
      API_AUTH: 'off',
      STRIPE_MAX_NETWORK_RETRIES: '0',
      ...stripeSandbox.env,
    });
    admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await svc?.stop();
    await stripeSandbox?.close();
  });
  return {
    get svc() {
      if (!svc) throw new Error('the rig starts in beforeAll');
      return svc;
    },
    waitsIn: async (like) =>
      (
        await admin!.query(
          "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock' AND query ILIKE $2",
          [appName, like],
        )
      ).rows.length > 0,
    lampSession: (metadata) =>
      svc!.deps.stripe.checkout.sessions.create({
        mode: 'payment',
        line_items: [
          { price_data: { currency: 'usd', product_data: { name: 'Lamp' }, unit_amount: 4200 }, quantity: 1 },
        ],
        success_url: 'https://shop.example.com/ok',
        cancel_url: 'https://shop.example.com/no',
        ...(metadata && { metadata }),
      }),
  };
}
