/**
 * OWNER_ORIGINS is opt-in: a service holding two shops whose publishable keys share CORS_ORIGINS lets either shop's
 * checkouts send customers back to the other's origin (README, API keys). The operator is told so at start, once
 * two owners hold publishable keys and OWNER_ORIGINS is unset; a one-shop service, or one with OWNER_ORIGINS, is not.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

const SHOP = 'ppk_owner_origins_warning_shop_browser_key_0001';
const RIVAL = 'ppk_owner_origins_warning_rival_browser_key_001';
const SERVER = 'psk_owner_origins_warning_shop_server_key_00001';
const ORIGINS = 'https://shop.example.com,https://rival.example.org';

let svc: TestService | undefined;
afterEach(async () => {
  await svc?.stop();
  svc = undefined;
});

async function ownerOriginsWarnings(env: Record<string, string>) {
  svc = await startTestService('sqlite', { API_AUTH: 'on', CORS_ORIGINS: ORIGINS, ...env });
  return svc.lines
    .map((l) => JSON.parse(l) as { level: number; msg: string; owners?: unknown })
    .filter((l) => l.level === 40 && l.msg.includes('OWNER_ORIGINS'));
}

describe('the start-up warning about OWNER_ORIGINS', () => {
  it('two owners with publishable keys and no OWNER_ORIGINS: warned, naming the owners, never a key', async () => {
    const warned = await ownerOriginsWarnings({
      API_KEYS: `shop||${SHOP} rival||${RIVAL} shop|payments:read|${SERVER}`,
    });
    expect(warned).toHaveLength(1);
    expect(warned[0]!.owners).toEqual(['rival', 'shop']);
    expect(warned[0]!.msg).toMatch(/CORS_ORIGINS/);
    const all = svc!.lines.join('\n');
    for (const key of [SHOP, RIVAL, SERVER]) expect(all).not.toContain(key);
  });

  it('one owner with publishable keys: no warning', async () => {
    expect(await ownerOriginsWarnings({ API_KEYS: `shop||${SHOP} shop|payments:read|${SERVER}` })).toEqual(
      [],
    );
  });

  it('OWNER_ORIGINS set: no warning', async () => {
    expect(
      await ownerOriginsWarnings({
        API_KEYS: `shop||${SHOP} rival||${RIVAL}`,
        OWNER_ORIGINS: 'shop=https://shop.example.com rival=https://rival.example.org',
      }),
    ).toEqual([]);
  });
});
