/**
 * A key made with `npm run keys -- create` and then listed in API_KEYS (a deployment moving to containers keeps its
 * clients' keys) is taken over by API_KEYS, and taking it out of API_KEYS again revokes it, with the warning.
 *
 * README (API keys): a key API_KEYS provisioned before and no longer lists is revoked (each change a warning).
 * provisionKeys revoked only keys whose id starts with key_cfg_, those it inserted itself: a key it found by its hash
 * kept its key_ id, so once API_KEYS had set its owner and scopes ("API key changed to what API_KEYS now says"),
 * taking it out (a leaked key) left it active, with no warning. Failed before: no warning, 200.
 */
import { describe, expect, it } from 'vitest';
import { createKey } from '../../src/auth/api-keys.js';
import { ALL_SCOPES, apiKeysRig } from '../helpers/api-keys-rig.js';
import type { TestService } from '../helpers/service.js';

const OTHER = 'psk_other_secret_key_for_adopted_key_left_out_001';

const { start, stop, createIntent } = apiKeysRig('adopted-key');

const warnings = (s: TestService) =>
  s.lines
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .filter((l) => l.level === 40 && /API_KEYS/.test(l.msg))
    .map((l) => l.msg);

describe('a key made with npm run keys, then listed in API_KEYS', () => {
  it('is revoked once API_KEYS no longer lists it', async () => {
    let s = await start(undefined);
    // As `npm run keys -- create shop` makes it.
    const { key } = await createKey(s.deps.store.apiKeys, { owner: 'shop', kind: 'secret' });
    await stop();

    // Listed in API_KEYS (with fewer scopes): API_KEYS takes it over.
    s = await start(`shop|payments:write|${key} shop|${ALL_SCOPES}|${OTHER}`);
    expect(warnings(s)).toEqual(['API key changed to what API_KEYS now says']);
    expect((await createIntent(s, key)).status).toBe(200);
    await stop();

    // Taken out of API_KEYS (it leaked).
    s = await start(`shop|${ALL_SCOPES}|${OTHER}`);
    expect
      .soft(warnings(s), 'warnings at the start without it')
      .toEqual(['API key revoked: API_KEYS no longer lists it']);
    expect((await createIntent(s, key)).status, 'the key taken out of API_KEYS').toBe(401);
  }, 60_000);
});
