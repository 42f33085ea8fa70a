/**
 * An API_KEYS entry that marks a key `publishable` while the key is a secret one by its form (`psk_...`) provisions a
 * secret key with all four scopes, refunds included, without a word.
 *
 * parseProvisionedKeys takes the kind of a full key from its prefix, drops `publishable` from the scope list, and
 * normaliseScopes gives a secret key listed with no scope every scope (README: "none listed, `shop||psk_...`: all
 * four"). So `shop|publishable|psk_...`, where the operator said as plainly as the syntax allows that this is the
 * shop's browser key (the one it puts in its pages), becomes a key that confirms intents with any card (card testing)
 * and refunds every payment of the shop. The same for a hashed entry listing `publishable` with a scope beside it
 * (`shop|publishable,refunds:write|sha256:...`), which is taken as a secret key with refunds:write. Such an entry
 * says two contradictory things and should be refused at start naming it, as other malformed entries are (a key
 * that does not look like one, a bad owner, an unknown scope).
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { parseProvisionedKeys } from '../../src/auth/api-keys.js';
import { loadConfig } from '../../src/config/index.js';
import { paidIntent, postJson } from '../helpers/http.js';
import { startTestService, type TestService } from '../helpers/service.js';

const BROWSER = 'psk_the_shops_browser_key_written_by_its_operator_01';
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

let svc: TestService | undefined;
afterEach(async () => {
  await svc?.stop();
  svc = undefined;
});

describe('an API_KEYS entry marking a psk_ key publishable', () => {
  it('is refused, not provisioned as a secret key with every scope', () => {
    const parse = () => parseProvisionedKeys(`shop|publishable|${BROWSER}`);
    let provisioned: unknown;
    try {
      provisioned = parse();
    } catch {
      provisioned = 'refused';
    }
    // Today: [{ owner: 'shop', kind: 'secret', scopes: all four, ... }].
    expect.soft(provisioned).toBe('refused');
    const hashed = `shop|publishable,refunds:write|sha256:${createHash('sha256').update(BROWSER).digest('hex')}`;
    expect(() => parseProvisionedKeys(hashed)).toThrow(/API_KEYS entry 1/);
    expect(() =>
      loadConfig({ API_AUTH: 'on', API_KEYS: `shop|publishable|${BROWSER}`, STRIPE_SECRET_KEY: 'sk_test_x' }),
    ).toThrow(/API_KEYS/);
  });

  it('what the key can do once provisioned so: confirm intents and refund them', async () => {
    svc = await startTestService('sqlite', { API_AUTH: 'on', API_KEYS: `shop|publishable|${BROWSER}` });
    // Card testing: a publishable key is refused `confirm: true` (403).
    const pi = await paidIntent(svc.url, 1000, { headers: bearer(BROWSER) }).catch((err: Error) => err);
    expect.soft(pi, 'confirm: true with the key marked publishable').toBeInstanceOf(Error);
    const refund = await postJson(
      `${svc.url}/refund`,
      { payment_intent_id: typeof pi === 'string' ? pi : 'pi_unknown0000000000' },
      bearer(BROWSER),
    );
    expect(refund.status, 'POST /refund with the key marked publishable').toBe(403);
  });
});
