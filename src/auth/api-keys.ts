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
  const bad = list.filter((s) => !isScope(s));
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
  for (const [i, entry] of spec.split(/\s+/).filter(Boolean).entries()) {
    const parts = entry.split('|');
    if (parts.length !== 3) throw new Error(`API_KEYS entry ${i + 1}: expected owner|scopes|key`);
    const [owner, scopeList, key] = parts as [string, string, string];
    validateOwner(owner);
    const scopes = scopeList.split(',').filter(Boolean);
    let kind: KeyKind;
    let hash: string;
    let prefix: string;
    if (key.startsWith('sha256:')) {
      hash = key.slice('sha256:'.length).toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(hash))
        throw new Error(`API_KEYS entry ${i + 1}: sha256 must be 64 hex digits`);
      kind = scopes.length === 1 && scopes[0] === 'publishable' ? 'publishable' : 'secret';
      prefix = `sha256:${hash.slice(0, 8)}`;
    } else {
      const k = kindOfKey(key);
      if (!k)
        throw new Error(`API_KEYS entry ${i + 1}: key must look like psk_... or ppk_... (32+ characters)`);
      kind = k;
      hash = hashKey(key);
      prefix = key.slice(0, 12);
    }
    out.push({
      owner,
      kind,
      scopes: normaliseScopes(
        kind,
        scopes.filter((s) => s !== 'publishable'),
      ),
      hash,
      prefix,
    });
  }
  return out;
}

/** Makes sure every provisioned key exists (idempotent across restarts and replicas). */
export async function provisionKeys(repo: ApiKeysRepo, keys: readonly ProvisionedKey[]): Promise<number> {
  let added = 0;
  for (const k of keys) {
    if (await repo.findActiveByHash(k.hash)) continue;
    try {
      await repo.insert({
        id: `key_cfg_${k.hash.slice(0, 16)}`,
        owner: k.owner,
        name: `${k.owner} (from API_KEYS)`,
        kind: k.kind,
        prefix: k.prefix,
        hash: k.hash,
        scopes: k.scopes,
      });
      added++;
    } catch (err) {
      // Another replica provisioned it first, or it was revoked on purpose: both mean leave it alone.
      if (!(err instanceof DuplicateKeyError)) throw err;
    }
  }
  return added;
}
