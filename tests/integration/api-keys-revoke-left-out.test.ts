/**
 * A leaked key taken out of API_KEYS can still be revoked by hand, and then stays revoked when a process starts
 * with the earlier API_KEYS again.
 *
 * README (API keys): the keys follow the API_KEYS of the process that started last, and "A key revoked with
 * `npm run keys -- revoke` stays revoked, listed or not: do that to a leaked key." Taking a leaked key out of
 * API_KEYS revokes it as left out (`<owner> (left out of API_KEYS)`), which a start listing it again undoes. The
 * revoke then answered `no active key <id>` (exit 1) and changed nothing (ApiKeysRepo.revoke only touches an active
 * key), so a rollback or an old replica restarted during the update made the leaked key active again (it paid: 200).
 * Failed before on both steps.
 */
import { describe, expect, it } from 'vitest';
import { ALL_SCOPES, apiKeysRig } from '../helpers/api-keys-rig.js';

const LEAKED = 'psk_leaked_secret_key_for_revoke_left_out_test_01';
const OTHER = 'psk_other_secret_key_for_revoke_left_out_test_001';

const { start, stop, createIntent, keysCli } = apiKeysRig('revoke-left-out');

describe('a leaked provisioned key, taken out of API_KEYS, then revoked with npm run keys -- revoke', () => {
  it('stays revoked when a process starts with the earlier API_KEYS again', async () => {
    const before = `shop|${ALL_SCOPES}|${LEAKED} shop|${ALL_SCOPES}|${OTHER}`;
    let s = await start(before);
    expect((await createIntent(s, LEAKED)).status).toBe(200);
    const leakedId = (await s.deps.store.apiKeys.list('shop')).find(
      (k) => k.prefix === LEAKED.slice(0, 12),
    )!.id;
    await stop();

    // The leak: the key is taken out of API_KEYS and the service redeployed. It stops working.
    s = await start(`shop|${ALL_SCOPES}|${OTHER}`);
    expect((await createIntent(s, LEAKED)).status).toBe(401);
    await stop();

    // As README says to do to a leaked key.
    const revoked = await keysCli(['revoke', leakedId]);
    expect(revoked, 'npm run keys -- revoke of the leaked key').toMatchObject({
      code: 0,
      stdout: `revoked ${leakedId}\n`,
    });

    // A process of the previous deployment starts again (a rollback, or an old replica during the update).
    s = await start(before);
    const again = await createIntent(s, LEAKED);
    expect(again.status, 'the leaked key after a start with the earlier API_KEYS').toBe(401);
  }, 60_000);
});
