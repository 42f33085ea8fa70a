/**
 * API keys of this service (not Stripe keys). A key is shown once at creation; only its SHA-256 is
 * stored, which is safe for 256-bit random keys and keeps lookups O(1). Secret keys (`psk_`) carry
 * scopes; publishable keys (`ppk_`) are for browsers and can only start payments.
 */
import { hash, randomBytes } from 'node:crypto';
import type { ApiKey, ApiKeysRepo } from '../store/index.js';
import { DuplicateKeyError } from '../store/index.js';

export const SCOPES = ['payments:write', 'payments:read', 'refunds:write', 'refunds:read'] as const;
export type Scope = (typeof SCOPES)[number];
export type KeyKind = 'secret' | 'publishable';

/** What a publishable key may do, whatever scopes it claims: start a checkout or a payment intent. */
export const PUBLISHABLE_OPERATIONS: ReadonlySet<string> = new Set([
  'createCheckoutSession',
  'createPaymentIntent',
]);
export const PUBLISHABLE_SCOPES: readonly Scope[] = ['payments:write'];

const PREFIX: Record<KeyKind, string> = { secret: 'psk_', publishable: 'ppk_' };
const KEY_SHAPE = /^(psk|ppk)_[A-Za-z0-9_-]{32,128}$/;
const OWNER_SHAPE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

export function hashKey(key: string): string {
  return hash('sha256', key, 'hex');
}

export function looksLikeKey(key: string): boolean {
  return KEY_SHAPE.test(key);
}

export function kindOfKey(key: string): KeyKind | null {
  if (!looksLikeKey(key)) return null;
  return key.startsWith('ppk_') ? 'publishable' : 'secret';
}

export function validateOwner(owner: string): string {
  if (!OWNER_SHAPE.test(owner)) {
    throw new Error(
      'owner must be 1-63 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit',
    );
  }
  return owner;
}

export interface NewKeyRequest {
  owner: string;
  name?: string;
  kind: KeyKind;
  scopes?: readonly string[];
}

export interface CreatedKey {
  /** The key itself: shown once, never stored. */
  key: string;
  record: ApiKey;
}

function normaliseScopes(kind: KeyKind, scopes: readonly string[] | undefined): Scope[] {
  if (kind === 'publishable') return [...PUBLISHABLE_SCOPES];
  const list = scopes && scopes.length > 0 ? scopes : SCOPES;
  // A key pasted into the scopes field (owner|key|key) must not end up in the error, and so in the logs.
  const bad = list
    .filter((s) => !isScope(s))
    .map((s) => (/^(psk|ppk|sk|rk|pk|whsec)_/.test(s) ? '(a key)' : s));
  if (bad.length > 0) throw new Error(`unknown scope(s): ${bad.join(', ')}; known: ${SCOPES.join(', ')}`);
  return [...new Set(list as Scope[])];
}

export async function createKey(repo: ApiKeysRepo, req: NewKeyRequest): Promise<CreatedKey> {
  const owner = validateOwner(req.owner);
  const key = PREFIX[req.kind] + randomBytes(32).toString('base64url');
  const record = await repo.insert({
    id: `key_${randomBytes(8).toString('hex')}`,
    owner,
    name: req.name ?? `${owner} ${req.kind} key`,
    kind: req.kind,
    prefix: key.slice(0, 12),
    hash: hashKey(key),
    scopes: normaliseScopes(req.kind, req.scopes),
  });
  return { key, record };
}

/**
 * Keys provisioned from configuration (API_KEYS), for container deployments: whitespace-separated entries
 * `owner|scope,scope|key`, where key is the full key or `sha256:<hex>` so the key itself need not be in the
 * environment. A `sha256:` entry whose scopes are just `publishable` is a publishable key.
 */
export interface ProvisionedKey {
  owner: string;
  kind: KeyKind;
  scopes: Scope[];
  hash: string;
  prefix: string;
}

export function parseProvisionedKeys(spec: string): ProvisionedKey[] {
  const out: ProvisionedKey[] = [];
  const entryOf = new Map<string, number>();
  for (const [i, entry] of spec.split(/\s+/).filter(Boolean).entries()) {
    const parts = entry.split('|');
    if (parts.length !== 3) throw new Error(`API_KEYS entry ${i + 1}: expected owner|scopes|key`);
    const [owner, scopeList, key] = parts as [string, string, string];
    const inEntry = <T>(check: () => T): T => {
      try {
        return check();
      } catch (err) {
        throw new Error(`API_KEYS entry ${i + 1}: ${(err as Error).message}`);
      }
    };
    inEntry(() => validateOwner(owner));
    const scopes = scopeList.split(',').filter(Boolean);
    let kind: KeyKind;
    let hash: string;
    let prefix: string;
    // `publishable` marks a browser key, which has one grant: with a scope beside it, or on a key that is secret by
    // its form, the entry says two things. Each was taken as a secret key (a psk_ key with no other scope listed: all
    // four), so the key its operator meant for the shop's pages confirmed intents and refunded.
    const publishable = scopes.includes('publishable');
    if (key.startsWith('sha256:')) {
      hash = key.slice('sha256:'.length).toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(hash))
        throw new Error(`API_KEYS entry ${i + 1}: sha256 must be 64 hex digits`);
      if (publishable && scopes.length > 1) {
        throw new Error(
          `API_KEYS entry ${i + 1}: publishable is a browser key's whole grant: list it alone (a ppk_ key's hash), or a secret key's scopes without it`,
        );
      }
      kind = publishable ? 'publishable' : 'secret';
      prefix = `sha256:${hash.slice(0, 8)}`;
    } else {
      const k = kindOfKey(key);
      if (!k)
        throw new Error(`API_KEYS entry ${i + 1}: key must look like psk_... or ppk_... (32+ characters)`);
      kind = k;
      if (publishable && kind === 'secret') {
        throw new Error(
          `API_KEYS entry ${i + 1}: publishable names a browser key, but this key is a secret one (psk_): give a ppk_ key, or list the secret key's scopes`,
        );
      }
      hash = hashKey(key);
      prefix = key.slice(0, 12);
    }
    // One key with two grants would be given each in turn at every start.
    const earlier = entryOf.get(hash);
    if (earlier !== undefined) throw new Error(`API_KEYS entry ${i + 1}: the same key as entry ${earlier}`);
    entryOf.set(hash, i + 1);
    out.push({
      owner,
      kind,
      scopes: inEntry(() =>
        normaliseScopes(
          kind,
          scopes.filter((s) => s !== 'publishable'),
        ),
      ),
      hash,
      prefix,
    });
  }
  return out;
}

/**
 * Ids of the keys API_KEYS provisioned; keys made with `npm run keys` have other ids. The rest is random, as theirs:
 * it was the first 16 hex digits of the key's SHA-256, logged with each change API_KEYS makes and listed by
 * `npm run keys -- list`, and API_KEYS takes keys an operator writes, so anyone reading the logs could try guesses
 * at a key offline. Keys are matched by their hash, never their id, and keys provisioned before keep their ids.
 */
export const PROVISIONED_KEY_ID_PREFIX = 'key_cfg_';

const provisionedName = (owner: string) => `${owner} (from API_KEYS)`;
/** The name a provisioned key is revoked under when API_KEYS leaves it out: what tells it from a revoked one. */
const leftOutName = (owner: string) => `${owner} (left out of API_KEYS)`;

export interface ProvisionReport {
  /** Keys added now. */
  added: number;
  /** Active keys whose owner, kind or scopes were not what API_KEYS now says, as they are now. */
  changed: ApiKey[];
  /** Active keys API_KEYS provisioned (or took over) before and no longer lists, now revoked. */
  revoked: ApiKey[];
  /** Keys revoked for being left out of API_KEYS that it lists again, active again as listed. */
  reinstated: ApiKey[];
  /** Ids of keys API_KEYS lists that were revoked with `npm run keys -- revoke`: they stay revoked. */
  stillRevoked: string[];
}

/**
 * Whether API_KEYS manages `record`: a key it provisioned (its id), or one made otherwise (`npm run keys -- create`)
 * that it lists and so took over (its name). Taking such a key out of API_KEYS revokes it: one taken over kept its
 * key_ id, and taken out it stayed active, with the owner and scopes API_KEYS had given it and no warning.
 */
const managedByApiKeys = (record: ApiKey) =>
  record.id.startsWith(PROVISIONED_KEY_ID_PREFIX) || record.name === provisionedName(record.owner);

/** Whether `record` is a key revoked for being left out of API_KEYS (which listing it again undoes). */
const revokedAsLeftOut = (record: ApiKey) =>
  record.revokedAt !== null && record.name === leftOutName(record.owner);

/**
 * `npm run keys -- revoke`: revokes key `id` for good, listed in API_KEYS or not. A provisioned key API_KEYS left out
 * is revoked already, but only until a start lists it again (provisionKeys): the first thing done with a leaked key
 * is to take it out of API_KEYS, and the revoke README asks for then answered `no active key` and changed nothing, so
 * a process started with the earlier list (a rollback, an old replica during the update) made it active again. Such a
 * key is now marked revoked by hand. True when the key was active, or revoked only for being left out.
 */
export async function revokeKey(repo: ApiKeysRepo, id: string, now: Date = new Date()): Promise<boolean> {
  if (await repo.revoke(id, now)) return true;
  const record = (await repo.list()).find((r) => r.id === id);
  if (!record || !revokedAsLeftOut(record)) return false;
  // Revoked at the time it was left out (again, should a start have listed it meanwhile), under the name a key
  // revoked by hand keeps: provisionKeys then leaves it revoked.
  return repo.update(id, { name: provisionedName(record.owner), revokedAt: record.revokedAt });
}

const sameScopes = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && [...a].sort().join(',') === [...b].sort().join(',');

/**
 * Makes the keys API_KEYS provisions what it says (idempotent across restarts and replicas): each listed key
 * exists, active, with the owner, kind and scopes listed, and a key it provisioned (or took over: one made with
 * `npm run keys` that it lists) before and no longer lists is revoked. Only adding was done before, so a scope taken away, a key moved to another owner or a key taken out (a
 * leaked one) went on working as before. The database follows the API_KEYS of the process that started last: a
 * key left out and listed again (a process restarted with the previous list during an update) is active again,
 * but a key revoked with `npm run keys -- revoke` stays revoked. With no keys listed (API_KEYS unset, say in a
 * worker) nothing is changed.
 */
export async function provisionKeys(
  repo: ApiKeysRepo,
  keys: readonly ProvisionedKey[],
  now: Date = new Date(),
): Promise<ProvisionReport> {
  const report: ProvisionReport = { added: 0, changed: [], revoked: [], reinstated: [], stillRevoked: [] };
  if (keys.length === 0) return report;
  const known = new Map((await repo.list()).map((r) => [r.hash, r]));
  for (const k of keys) {
    const record = known.get(k.hash);
    const grant = { owner: k.owner, kind: k.kind, scopes: k.scopes };
    if (!record) {
      try {
        await repo.insert({
          id: `${PROVISIONED_KEY_ID_PREFIX}${randomBytes(8).toString('hex')}`,
          name: provisionedName(k.owner),
          prefix: k.prefix,
          hash: k.hash,
          ...grant,
        });
        report.added++;
      } catch (err) {
        // Another replica provisioned it first.
        if (!(err instanceof DuplicateKeyError)) throw err;
      }
    } else if (record.revokedAt !== null) {
      if (revokedAsLeftOut(record)) {
        await repo.update(record.id, { ...grant, name: provisionedName(k.owner), revokedAt: null });
        report.reinstated.push({ ...record, ...grant, revokedAt: null });
      } else {
        report.stillRevoked.push(record.id);
      }
    } else if (record.owner !== k.owner || record.kind !== k.kind || !sameScopes(record.scopes, k.scopes)) {
      await repo.update(record.id, { ...grant, name: provisionedName(k.owner) });
      report.changed.push({ ...record, ...grant });
    } else if (record.name !== provisionedName(k.owner)) {
      // A key made with `npm run keys`, listed as it is: taken over all the same (see managedByApiKeys).
      await repo.update(record.id, { name: provisionedName(k.owner) });
    }
  }
  const listed = new Set(keys.map((k) => k.hash));
  for (const record of known.values()) {
    if (!managedByApiKeys(record) || record.revokedAt || listed.has(record.hash)) continue;
    await repo.update(record.id, { name: leftOutName(record.owner), revokedAt: now });
    report.revoked.push(record);
  }
  return report;
}
