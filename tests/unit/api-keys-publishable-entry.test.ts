/**
 * An API_KEYS entry marking a key `publishable` while the key is secret by its form (`shop|publishable|psk_...`), or a
 * hashed entry listing `publishable` beside another scope, is refused at start naming the entry.
 *
 * parseProvisionedKeys took the kind of a full key from its prefix and dropped `publishable` from the scopes, and a
 * secret key listed with no scope gets every scope: the key its operator meant for the shop's pages was provisioned
 * as a secret key with all four, and confirmed intents (card testing) and refunded (POST /refund 200). A hashed
 * entry `shop|publishable,refunds:write|sha256:...` was a secret key with refunds:write. Failed before (provisioned).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseProvisionedKeys } from '../../src/auth/api-keys.js';
import { loadConfig } from '../../src/config/index.js';

const SECRET = 'psk_the_shops_browser_key_written_by_its_operator_01';
const BROWSER = 'ppk_the_shops_browser_key_written_by_its_operator_01';
const sha256 = (key: string) => `sha256:${createHash('sha256').update(key).digest('hex')}`;

describe('API_KEYS entries naming the publishable scope', () => {
  it('refuses publishable on a psk_ key, naming the entry and never the key', () => {
    const spec = `shop|payments:read|${BROWSER} shop|publishable|${SECRET}`;
    expect(() => parseProvisionedKeys(spec)).toThrow(
      /^API_KEYS entry 2: publishable names a browser key, but this key is a secret one \(psk_\)/,
    );
    let message = '';
    try {
      loadConfig({ API_AUTH: 'on', API_KEYS: spec, STRIPE_SECRET_KEY: 'sk_test_x' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('API_KEYS entry 2: publishable names a browser key');
    expect(message).not.toContain(SECRET.slice(4));
  });

  it('refuses a hashed entry listing publishable beside another scope', () => {
    expect(() => parseProvisionedKeys(`shop|publishable,refunds:write|${sha256(SECRET)}`)).toThrow(
      /^API_KEYS entry 1: publishable is a browser key's whole grant/,
    );
  });

  it('still takes publishable alone for a hashed key, and on a ppk_ key (whose scopes are ignored)', () => {
    const keys = parseProvisionedKeys(
      `shop|publishable|${sha256(BROWSER)} shop|publishable,payments:read|${BROWSER}2`,
    );
    expect(keys.map((k) => [k.kind, k.scopes])).toEqual([
      ['publishable', ['payments:write']],
      ['publishable', ['payments:write']],
    ]);
  });
});
