import { randomUUID } from 'node:crypto';
import { addMs, fromJson, toIso, toJson } from './codec.js';
import { PG_PURGE_BATCH, purgeInSlices } from './purge.js';
import type { TimeInput } from './codec.js';
import type { RepoContext } from './repo-context.js';
import { placeholders, queryTemplate } from './query-template.js';

export type IdempotencyBegin =
  /** The caller owns the key now: do the work, then complete() or abandon(). */
  | { kind: 'started' }
  /** The same request is still being worked on elsewhere, since `since` (ISO time) when known. */
  | { kind: 'in_progress'; since?: string }
  /** The key was used with a different request body. */
  | { kind: 'mismatch' }
  /** The request was done before: answer with the stored response. */
  | { kind: 'replay'; status: number; body: unknown };

/**
 * What one claim of a key is known by: the time begin() was given (the row's `created_at`) and a token unique to the
 * claim (`claim_token`; see newIdempotencyClaim). Two claims of a key in the same millisecond differ by their token.
 */
export interface IdempotencyClaim {
  readonly at: TimeInput;
  readonly token: string;
}

/** A new claim's identity, at `at` (now by default), with a random token. */
export function newIdempotencyClaim(at: TimeInput = new Date()): IdempotencyClaim {
  return { at, token: randomUUID() };
}

export interface IdempotencyRepo {
  /**
   * Claims `(owner, key)` for a request whose body hashes to `requestHash`, for `ttlMs`. Given several hashes, the
   * first is kept, and a kept key matches any of them (the others: what versions before hashed the request as).
   * Race-safe: of concurrent begins with one key exactly one gets 'started'. An expired row counts as absent.
   * `claim` is the time of the claim (now by default) and what it is known by: given as an IdempotencyClaim, its
   * time and token, which complete() and abandon() given the same claim match, so they act only on that claim, not
   * on one another request made since (a retry that took the key over after this one went stale, or claimed it
   * after this one was abandoned), even in the same millisecond. Given as a time alone, the claim gets a random
   * token and is known by its time alone.
   */
  begin(
    owner: string,
    key: string,
    requestHash: string | readonly [string, ...string[]],
    ttlMs: number,
    claim?: TimeInput | IdempotencyClaim,
  ): Promise<IdempotencyBegin>;
  /**
   * Stores the response to replay; false when the key has no in-progress row, or (given `claim`, what its begin()
   * was given) when the row in progress is another request's claim. A claim given as a time alone matches the row's
   * `created_at` only (as versions before claim tokens did).
   */
  complete(
    owner: string,
    key: string,
    status: number,
    body: unknown,
    claim?: TimeInput | IdempotencyClaim,
  ): Promise<boolean>;
  /** Forgets an in-progress key (nothing was done under it) so that any request may use it; `claim` as for complete(). */
  abandon(owner: string, key: string, claim?: TimeInput | IdempotencyClaim): Promise<boolean>;
  /**
   * Frees an in-progress key for a retry of the same request (e.g. after a 5xx, when something may have been done
   * under it), while the key stays bound to that request until it expires: the next begin() with its body takes it
   * over at once, and one with another body gets 'mismatch'. The claim is left as a stale one (RELEASED_AT);
   * `claim` as for complete().
   */
  release(owner: string, key: string, claim: TimeInput | IdempotencyClaim): Promise<boolean>;
  /** Deletes expired keys; returns how many. In statements of about `batch` rows, as OutboxRepo.purgeSent. */
  purgeExpired(now?: TimeInput, batch?: number): Promise<number>;
}

/**
 * How long a request may hold its key in progress before a retry may take the key over: its process is then
 * taken to have died before answering (a live request is cut off by REQUEST_TIMEOUT_MS long before). Taking
 * over is safe for every operation that takes a key: a refund finds its own row again (by request_id, or by
 * the one derived from the key) and a create call reuses the Stripe idempotency key derived from it.
 */
export const IN_PROGRESS_STALE_MS = 10 * 60_000;

/**
 * The `created_at` of a released claim (IdempotencyRepo.release): older than any claim, so begin() (this version's
 * and earlier ones') takes it over as stale at once, after checking the request's hash.
 */
export const RELEASED_AT = '1970-01-01T00:00:00.000Z';

/** A concurrent abandon/purge can delete the row between our insert and read; go round again. */
const MAX_BEGIN_ROUNDS = 5;

// Every POST that carries an Idempotency-Key runs these two: built and compiled once, not per request.
const CLAIM_COLUMNS = ['owner', 'key', 'request_hash', 'created_at', 'expires_at', 'claim_token'] as const;
type ClaimParams = Record<(typeof CLAIM_COLUMNS)[number], string>;

const claim = queryTemplate<ClaimParams, never>('idempotency.claim', CLAIM_COLUMNS, (db, p) =>
  db
    .insertInto('idempotency_keys')
    .values({
      ...placeholders(p, CLAIM_COLUMNS),
      state: 'in_progress',
      response_status: null,
      response_body: null,
    })
    .onConflict((oc) => oc.columns(['owner', 'key']).doNothing()),
);

const completeClaim = queryTemplate<
  { owner: string; key: string; claim: string; token: string; status: number; body: string },
  never
>('idempotency.complete', ['owner', 'key', 'claim', 'token', 'status', 'body'], (db, p) =>
  db
    .updateTable('idempotency_keys')
    .set({ state: 'done', response_status: p('status'), response_body: p('body') })
    .where('owner', '=', p('owner'))
    .where('key', '=', p('key'))
    .where('state', '=', 'in_progress')
    .where('created_at', '=', p('claim'))
    .where('claim_token', '=', p('token')),
);

/**
 * A claim as given: its time, and its token when it has one. Both are matched: the token alone would also match a
 * claim a process of a version before tokens took over from this one (it leaves the token in place).
 */
function claimOf(claim: TimeInput | IdempotencyClaim): { at: string; token?: string } {
  return typeof claim === 'string' || claim instanceof Date
    ? { at: toIso(claim) }
    : { at: toIso(claim.at), token: claim.token };
}

export function createIdempotencyRepo(ctx: RepoContext): IdempotencyRepo {
  const { db } = ctx;

  return {
    async begin(owner, key, hashes, ttlMs, claimed = new Date()) {
      const { at, token = randomUUID() } = claimOf(claimed);
      const requestHash = typeof hashes === 'string' ? hashes : hashes[0];
      const sameRequest = (kept: string) =>
        typeof hashes === 'string' ? kept === hashes : hashes.includes(kept);
      const fresh = {
        request_hash: requestHash,
        state: 'in_progress' as const,
        response_status: null,
        response_body: null,
        created_at: at,
        expires_at: addMs(at, ttlMs),
        claim_token: token,
      };
      for (let round = 0; round < MAX_BEGIN_ROUNDS; round++) {
        const inserted = await claim.run(db, ctx.dialect, {
          owner,
          key,
          request_hash: requestHash,
          created_at: fresh.created_at,
          expires_at: fresh.expires_at,
          claim_token: token,
        });
        if ((inserted.numAffectedRows ?? 0n) > 0n) return { kind: 'started' };

        const row = await db
          .selectFrom('idempotency_keys')
          .select(['request_hash', 'state', 'response_status', 'response_body', 'created_at', 'expires_at'])
          .where('owner', '=', owner)
          .where('key', '=', key)
          .executeTakeFirst();
        if (!row) continue;

        if (toIso(row.expires_at) <= at) {
          // Conditional on still being expired, so of two callers taking over the same stale row
          // only one sees the update succeed.
          const taken = await db
            .updateTable('idempotency_keys')
            .set(fresh)
            .where('owner', '=', owner)
            .where('key', '=', key)
            .where('expires_at', '<=', at)
            .executeTakeFirst();
          if (taken.numUpdatedRows > 0n) return { kind: 'started' };
          continue;
        }
        if (!sameRequest(row.request_hash)) return { kind: 'mismatch' };
        if (row.state === 'in_progress' || row.response_status === null) {
          const staleBefore = addMs(at, -IN_PROGRESS_STALE_MS);
          if (toIso(row.created_at) > staleBefore)
            return { kind: 'in_progress', since: toIso(row.created_at) };
          // Conditional on still being the same stale claim, so of two retries only one takes it over.
          const taken = await db
            .updateTable('idempotency_keys')
            .set(fresh)
            .where('owner', '=', owner)
            .where('key', '=', key)
            .where('state', '=', 'in_progress')
            .where('created_at', '<=', staleBefore)
            .executeTakeFirst();
          if (taken.numUpdatedRows > 0n) return { kind: 'started' };
          continue;
        }
        return { kind: 'replay', status: row.response_status, body: fromJson<unknown>(row.response_body) };
      }
      // Only reachable when the row keeps vanishing under us; report it as busy rather than loop.
      return { kind: 'in_progress' };
    },

    async complete(owner, key, status, body, claimed) {
      const claim = claimed === undefined ? undefined : claimOf(claimed);
      if (claim?.token !== undefined) {
        const result = await completeClaim.run(db, ctx.dialect, {
          owner,
          key,
          claim: claim.at,
          token: claim.token,
          status,
          body: toJson(body),
        });
        return (result.numAffectedRows ?? 0n) > 0n;
      }
      let query = db
        .updateTable('idempotency_keys')
        .set({ state: 'done', response_status: status, response_body: toJson(body) })
        .where('owner', '=', owner)
        .where('key', '=', key)
        .where('state', '=', 'in_progress');
      if (claim !== undefined) query = query.where('created_at', '=', claim.at);
      const result = await query.executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async abandon(owner, key, claimed) {
      const claim = claimed === undefined ? undefined : claimOf(claimed);
      let query = db
        .deleteFrom('idempotency_keys')
        .where('owner', '=', owner)
        .where('key', '=', key)
        .where('state', '=', 'in_progress');
      if (claim !== undefined) query = query.where('created_at', '=', claim.at);
      if (claim?.token !== undefined) query = query.where('claim_token', '=', claim.token);
      const result = await query.executeTakeFirst();
      return result.numDeletedRows > 0n;
    },

    async release(owner, key, claimed) {
      const claim = claimOf(claimed);
      let query = db
        .updateTable('idempotency_keys')
        .set({ created_at: RELEASED_AT })
        .where('owner', '=', owner)
        .where('key', '=', key)
        .where('state', '=', 'in_progress')
        .where('created_at', '=', claim.at);
      if (claim.token !== undefined) query = query.where('claim_token', '=', claim.token);
      const result = await query.executeTakeFirst();
      return result.numUpdatedRows > 0n;
    },

    async purgeExpired(now = new Date(), batch) {
      const at = toIso(now);
      if (ctx.dialect === 'postgres') {
        // In slices of about `batch` keys, as OutboxRepo.purgeSent.
        const size = batch ?? PG_PURGE_BATCH;
        return purgeInSlices(
          async (from) => {
            let q = db.selectFrom('idempotency_keys').select('expires_at').where('expires_at', '<=', at);
            if (from !== undefined) q = q.where('expires_at', '>=', from);
            const row = await q.orderBy('expires_at').limit(1).offset(size).executeTakeFirst();
            return row?.expires_at;
          },
          async (from, until) => {
            let q = db.deleteFrom('idempotency_keys').where('expires_at', '<=', at);
            if (from !== undefined) q = q.where('expires_at', '>=', from);
            if (until !== undefined) q = q.where('expires_at', '<', until);
            return Number((await q.executeTakeFirst()).numDeletedRows);
          },
        );
      }
      const size = batch ?? 1_000;
      let total = 0;
      for (;;) {
        const result = await db
          .deleteFrom('idempotency_keys')
          .where((eb) =>
            eb(
              eb.refTuple('owner', 'key'),
              'in',
              eb
                .selectFrom('idempotency_keys')
                .select(['owner', 'key'])
                .where('expires_at', '<=', at)
                .limit(size)
                .$asTuple('owner', 'key'),
            ),
          )
          .executeTakeFirst();
        const n = Number(result.numDeletedRows);
        total += n;
        if (n < size) return total;
      }
    },
  };
}
