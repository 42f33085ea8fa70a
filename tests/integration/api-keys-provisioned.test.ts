/**
 * API_KEYS says which keys exist and what each may do. Changing it and restarting must change what the keys can
 * do: a scope taken away, a key moved to another owner or a key taken out (a leaked one) stop working at once.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseProvisionedKeys } from '../../src/auth/api-keys.js';
import { ALL_SCOPES, apiKeysRig, bearer } from '../helpers/api-keys-rig.js';
import { getJson, paidIntent, postJson } from '../helpers/http.js';
import type { TestService } from '../helpers/service.js';

const SECRET = 'psk_provisioned_secret_key_for_api_keys_test_01';
const BROWSER = 'ppk_provisioned_browser_key_for_api_keys_test_1';

/** The service on one ledger file that outlives each start, as a process restarted with new settings. */
const { start, createIntent } = apiKeysRig('api-keys-provisioned');

const warnings = (s: TestService) =>
  s.lines
    .map((l) => JSON.parse(l) as { level: number; msg: string; keyId?: string })
    .filter((l) => l.level === 40 && /API_KEYS/.test(l.msg));

describe('keys provisioned from API_KEYS, after a restart with other API_KEYS', () => {
  it('a scope taken away, an owner changed and a key left out take effect; a key revoked by hand stays revoked', async () => {
    let s = await start(`shop|${ALL_SCOPES}|${SECRET} shop|payments:write|${BROWSER}`);
    const intent = await paidIntent(s.url, 1000, { headers: bearer(SECRET) });
    const refunded = await postJson(
      `${s.url}/refund`,
      { payment_intent_id: intent, amount: 100, request_id: 'r-1' },
      bearer(SECRET),
    );
    expect(refunded.status).toBe(200);
    expect((await createIntent(s, BROWSER)).status).toBe(200);
    await s.stop();

    // The secret key may now only read refunds (the ledger answers those), and the browser key is gone.
    s = await start(`shop|refunds:read|${SECRET}`);
    const write = await createIntent(s, SECRET);
    expect(write.status).toBe(403);
    expect(write.json.code).toBe('insufficient_scope');
    const refund = await postJson(
      `${s.url}/refund`,
      { payment_intent_id: intent, amount: 100 },
      bearer(SECRET),
    );
    expect(refund.status).toBe(403);
    expect((await getJson(`${s.url}/refund-status/r-1`, bearer(SECRET))).status).toBe(200);
    const gone = await createIntent(s, BROWSER);
    expect(gone.status).toBe(401);
    expect(warnings(s).map((w) => w.msg)).toEqual([
      'API key changed to what API_KEYS now says',
      'API key revoked: API_KEYS no longer lists it',
    ]);
    await s.stop();

    // The secret key now belongs to another owner: the first owner's refund is not its to read.
    s = await start(`elsewhere|refunds:read|${SECRET}`);
    expect((await getJson(`${s.url}/refund-status/r-1`, bearer(SECRET))).status).toBe(404);
    await s.stop();

    // A process started without API_KEYS (a worker, say) leaves the provisioned keys as they are.
    s = await start(undefined);
    expect(warnings(s)).toEqual([]);
    expect((await createIntent(s, SECRET)).status).toBe(403);
    expect((await createIntent(s, BROWSER)).status).toBe(401);
    await s.stop();

    // Listed again (say a process restarted with the previous API_KEYS during an update), a key left out is back.
    s = await start(`shop|refunds:read|${SECRET} shop|payments:write|${BROWSER}`);
    expect((await createIntent(s, BROWSER)).status).toBe(200);
    expect(warnings(s).map((w) => w.msg)).toEqual([
      'API key changed to what API_KEYS now says',
      'API key active again: API_KEYS lists it again',
    ]);
    // A key revoked by hand stays revoked, listed or not.
    const browserKey = (await s.deps.store.apiKeys.list('shop')).find((k) => k.kind === 'publishable')!;
    await s.deps.store.apiKeys.revoke(browserKey.id);
    await s.stop();
    s = await start(`shop|refunds:read|${SECRET} shop|payments:write|${BROWSER}`);
    expect((await createIntent(s, BROWSER)).status).toBe(401);
    expect(warnings(s)).toMatchObject([
      {
        keyId: browserKey.id,
        msg: 'API_KEYS lists an API key revoked with npm run keys -- revoke: it stays revoked (provision a new one)',
      },
    ]);
  });

  it('a ppk_ key listed by its hash with scopes (not `publishable`) is still only a publishable key', async () => {
    // As `shop|payments:write|ppk_...` is written, with the key taken out of the environment.
    const HASHED_BROWSER = 'ppk_hashed_browser_key_for_api_keys_test_0001';
    const s = await start(
      `shop|payments:write|sha256:${createHash('sha256').update(HASHED_BROWSER).digest('hex')}`,
    );
    const confirmed = await postJson(
      `${s.url}/payment-intent`,
      { amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true },
      bearer(HASHED_BROWSER),
    );
    expect(confirmed.status).toBe(403);
    expect((await createIntent(s, HASHED_BROWSER)).status).toBe(200);
    expect((await s.deps.stripe.paymentIntents.list({ limit: 10 })).data.map((p) => p.status)).toEqual([
      'requires_payment_method',
    ]);
  });

  it("no log line or key id holds part of a provisioned key's hash", async () => {
    // API_KEYS takes keys the operator writes (32 characters and more), not only random ones: a piece of a key's
    // SHA-256 in the logs is enough to try guesses at the key offline. Provisioned keys had ids made of it
    // (key_cfg_ and 16 hex digits of the hash), logged with each change API_KEYS makes and listed by npm run keys.
    const KEY = 'psk_provisioned_key_whose_hash_stays_out_of_logs';
    const hash = createHash('sha256').update(KEY).digest('hex');
    let s = await start(`shop|${ALL_SCOPES}|${KEY}`);
    expect((await createIntent(s, KEY)).status).toBe(200);
    await s.stop();
    s = await start(`shop|refunds:read|${KEY}`);
    const changed = warnings(s).find((w) => w.msg === 'API key changed to what API_KEYS now says');
    expect(changed?.keyId).toMatch(/^key_cfg_/);
    expect(s.lines.join('\n')).not.toContain(hash.slice(0, 16));
    const ids = (await s.deps.store.apiKeys.list('shop')).map((k) => k.id);
    expect(ids).toContain(changed!.keyId);
    expect(ids.join(' ')).not.toContain(hash.slice(0, 16));
  });

  it('refuses one key listed twice, which would get each grant in turn', () => {
    expect(() => parseProvisionedKeys(`a|payments:read|${SECRET} b|refunds:read|${SECRET}`)).toThrow(
      'API_KEYS entry 2: the same key as entry 1',
    );
  });
});
