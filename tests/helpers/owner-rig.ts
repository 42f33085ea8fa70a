/**
 * A service with API keys on, a key of shop's and one of rival's, and a Stripe of its own that sends the service
 * no webhooks: the service learns what it is asked about, when asked (a test that wants an event delivers it
 * itself, signed with `webhookSecret`).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import {
  startSharedStripe,
  startTestService,
  type Db,
  type SharedStripe,
  type TestService,
} from './service.js';

/** The header a request sends with `key`. */
export const auth = (key: string) => ({ authorization: `Bearer ${key}` });

export interface OwnerRig {
  /** The service and its Stripe (set in beforeAll). */
  readonly svc: TestService;
  readonly stripe: SharedStripe;
  /** The service's STRIPE_WEBHOOK_SECRET. */
  readonly webhookSecret: string;
  /** Secret keys by owner: shop and rival (set in beforeAll; a test's own beforeAll may add more). */
  readonly keys: Record<string, string>;
}

/** Registers the rig's beforeAll and afterAll in the calling describe; `env` is added to the service's. */
export function useOwnerRig(db: Db, env: Record<string, string> = {}): OwnerRig {
  const webhookSecret = `whsec_${randomBytes(24).toString('hex')}`;
  const keys: Record<string, string> = {};
  let stripe: SharedStripe | undefined;
  let svc: TestService | undefined;
  beforeAll(async () => {
    stripe = await startSharedStripe();
    svc = await startTestService(db, {
      API_AUTH: 'on',
      STRIPE_MAX_NETWORK_RETRIES: '0',
      STRIPE_WEBHOOK_SECRET: webhookSecret,
      ...env,
      ...stripe.env,
    });
    keys.shop = (await createKey(svc.deps.store.apiKeys, { owner: 'shop', kind: 'secret' })).key;
    keys.rival = (await createKey(svc.deps.store.apiKeys, { owner: 'rival', kind: 'secret' })).key;
  });
  afterAll(async () => {
    await svc?.stop();
    await stripe?.close();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the rig starts in beforeAll');
    return value;
  };
  return {
    get svc() {
      return started(svc);
    },
    get stripe() {
      return started(stripe);
    },
    webhookSecret,
    keys,
  };
}
