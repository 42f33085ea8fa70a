import type { Selectable } from 'kysely';
import { fromDbTime, fromDbTimeOrNull, fromJson, nowIso, toIso, toJson } from './codec.js';
import type { TimeInput } from './codec.js';
import { API_KEY_COLUMNS, type ApiKeysTable } from './database.js';
import { queryTemplate } from './query-template.js';
import type { RepoContext } from './repo-context.js';

export type ApiKeyKind = ApiKeysTable['kind'];

/** A stored API key. The key itself is never stored, only its SHA-256. */
export interface ApiKey {
  /** Public id, e.g. `key_...`. */
  id: string;
  owner: string;
  name: string;
  kind: ApiKeyKind;
  /** First characters of the key, shown to humans to tell keys apart. */
  prefix: string;
  /** SHA-256 hex of the key. */
  hash: string;
  scopes: string[];
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export interface NewApiKey {
  id: string;
  owner: string;
  name: string;
  kind: ApiKeyKind;
  prefix: string;
  hash: string;
  scopes?: string[];
  createdAt?: TimeInput;
}

export type ApiKeyPatch = Partial<Pick<ApiKey, 'owner' | 'name' | 'kind' | 'scopes'>> & {
  revokedAt?: TimeInput | null;
};

export interface ApiKeysRepo {
  /** Throws DuplicateKeyError on a taken id or hash. */
  insert(k: NewApiKey): Promise<ApiKey>;
  /** The key for this hash, or null when unknown or revoked. */
  findActiveByHash(hash: string): Promise<ApiKey | null>;
  /** True when the key was active and is now revoked. */
  revoke(id: string, now?: TimeInput): Promise<boolean>;
  /** Sets what `patch` names (provisioning from API_KEYS); `revokedAt: null` reinstates a key. True when found. */
  update(id: string, patch: ApiKeyPatch): Promise<boolean>;
  /** Oldest first, revoked keys included; all owners when `owner` is undefined. */
  list(owner?: string): Promise<ApiKey[]>;
  /** Records a use. */
  touch(id: string, now?: TimeInput): Promise<boolean>;
}

export function toApiKey(row: Selectable<ApiKeysTable>): ApiKey {
  return {
    id: row.id,
    owner: row.owner,
    name: row.name,
    kind: row.kind,
    prefix: row.prefix,
    hash: row.hash,
    scopes: fromJson<string[]>(row.scopes) ?? [],
    createdAt: fromDbTime(row.created_at),
    revokedAt: fromDbTimeOrNull(row.revoked_at),
    lastUsedAt: fromDbTimeOrNull(row.last_used_at),
  };
}

/** Every authenticated request looks its key up: built and compiled once, not per request. */
const activeByHash = queryTemplate<{ hash: string }, Selectable<ApiKeysTable>>(
  'apiKeys.findActiveByHash',
  ['hash'],
  (db, p) =>
    db
      .selectFrom('api_keys')
      .select(API_KEY_COLUMNS)
      .where('hash', '=', p('hash'))
      .where('revoked_at', 'is', null),
);

export function createApiKeysRepo(ctx: RepoContext): ApiKeysRepo {
  const { db } = ctx;

  return {
    async insert(k) {
      const row = await db
        .insertInto('api_keys')
        .values({
          id: k.id,
          owner: k.owner,
          name: k.name,
          kind: k.kind,
          prefix: k.prefix,
          hash: k.hash,
          scopes: toJson(k.scopes ?? []),
          created_at: k.createdAt === undefined ? nowIso() : toIso(k.createdAt),
        })
        .returning(API_KEY_COLUMNS)
        .executeTakeFirstOrThrow();
      return toApiKey(row);
    },

    async findActiveByHash(hash) {
      const row = await activeByHash.first(db, ctx.dialect, { hash });
      return row ? toApiKey(row) : null;
    },

    async revoke(id, now = new Date()) {
      const result = await db
        .updateTable('api_keys')
        .set({ revoked_at: toIso(now) })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async update(id, patch) {
      const result = await db
        .updateTable('api_keys')
        .set({
          ...(patch.owner !== undefined ? { owner: patch.owner } : {}),
          ...(patch.name !== undefined ? { name: patch.name } : {}),
          ...(patch.kind !== undefined ? { kind: patch.kind } : {}),
          ...(patch.scopes !== undefined ? { scopes: toJson(patch.scopes) } : {}),
          ...(patch.revokedAt !== undefined
            ? { revoked_at: patch.revokedAt === null ? null : toIso(patch.revokedAt) }
            : {}),
        })
        .where('id', '=', id)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async list(owner) {
      const rows = await db
        .selectFrom('api_keys')
        .select(API_KEY_COLUMNS)
        .$if(owner !== undefined, (qb) => qb.where('owner', '=', owner ?? ''))
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return rows.map(toApiKey);
    },

    async touch(id, now = new Date()) {
      const result = await db
        .updateTable('api_keys')
        .set({ last_used_at: toIso(now) })
        .where('id', '=', id)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },
  };
}
