import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { DuplicateKeyError } from '../../src/store/index.js';
import { IN_PROGRESS_STALE_MS } from '../../src/store/idempotency-repo.js';
import type { NewApiKey } from '../../src/store/index.js';
import { ISO, describeStore, uid } from './harness.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const key = (over: Partial<NewApiKey> = {}): NewApiKey => {
  const secret = uid('sk_live');
  return {
    id: uid('key'),
    owner: 'acme',
    name: 'ci',
    kind: 'secret',
    prefix: secret.slice(0, 12),
    hash: sha256(secret),
    ...over,
  };
};

describeStore('api keys repository', (h) => {
  it('finds an active key by hash with its scopes, and not once revoked', async () => {
    const k = key({ scopes: ['payments:write', 'refunds:write'] });
    const inserted = await h.store.apiKeys.insert(k);
    expect(inserted).toMatchObject({
      id: k.id,
      owner: 'acme',
      kind: 'secret',
      prefix: k.prefix,
      scopes: ['payments:write', 'refunds:write'],
      revokedAt: null,
      lastUsedAt: null,
    });
    expect(inserted.createdAt).toMatch(ISO);
    expect(await h.store.apiKeys.findActiveByHash(k.hash)).toEqual(inserted);
    expect(await h.store.apiKeys.findActiveByHash(sha256('nope'))).toBeNull();

    expect(await h.store.apiKeys.revoke(k.id)).toBe(true);
    expect(await h.store.apiKeys.revoke(k.id)).toBe(false);
    expect(await h.store.apiKeys.findActiveByHash(k.hash)).toBeNull();
  });

  it('update sets owner, name, kind and scopes, and revokes or reinstates', async () => {
    const k = await h.store.apiKeys.insert(key({ scopes: ['payments:write', 'refunds:write'] }));
    const grant = { owner: 'other', kind: 'publishable' as const, scopes: ['payments:write'] };
    expect(await h.store.apiKeys.update(k.id, { ...grant, name: 'renamed' })).toBe(true);
    expect(await h.store.apiKeys.findActiveByHash(k.hash)).toEqual({ ...k, ...grant, name: 'renamed' });

    expect(await h.store.apiKeys.update(k.id, { revokedAt: '2030-02-01T00:00:00Z' })).toBe(true);
    expect(await h.store.apiKeys.findActiveByHash(k.hash)).toBeNull();
    expect((await h.store.apiKeys.list('other')).find((r) => r.id === k.id)?.revokedAt).toBe(
      '2030-02-01T00:00:00.000Z',
    );
    expect(await h.store.apiKeys.update(k.id, { revokedAt: null })).toBe(true);
    expect((await h.store.apiKeys.findActiveByHash(k.hash))?.scopes).toEqual(['payments:write']);
    expect(await h.store.apiKeys.update('key_missing', { name: 'x' })).toBe(false);
  });

  it('rejects a duplicate id or hash', async () => {
    const k = await h.store.apiKeys.insert(key());
    await expect(h.store.apiKeys.insert(key({ id: k.id }))).rejects.toBeInstanceOf(DuplicateKeyError);
    const byHash = await h.store.apiKeys.insert(key({ hash: k.hash })).catch((e: unknown) => e);
    expect(byHash).toBeInstanceOf(DuplicateKeyError);
    expect((byHash as DuplicateKeyError).columns).toEqual(['hash']);
  });

  it('lists keys per owner or all, revoked included; touch records the last use', async () => {
    const db = await h.open(h.newDatabase());
    const a = await db.apiKeys.insert(key({ owner: 'a', createdAt: '2030-01-01T00:00:00Z' }));
    const b = await db.apiKeys.insert(
      key({ owner: 'b', kind: 'publishable', createdAt: '2030-01-02T00:00:00Z' }),
    );
    const a2 = await db.apiKeys.insert(key({ owner: 'a', createdAt: '2030-01-03T00:00:00Z' }));
    await db.apiKeys.revoke(a.id, '2030-02-01T00:00:00Z');

    expect((await db.apiKeys.list('a')).map((k) => k.id)).toEqual([a.id, a2.id]);
    expect((await db.apiKeys.list()).map((k) => k.id)).toEqual([a.id, b.id, a2.id]);
    expect((await db.apiKeys.list('a'))[0]?.revokedAt).toBe('2030-02-01T00:00:00.000Z');
    expect(await db.apiKeys.list('nobody')).toEqual([]);

    expect(await db.apiKeys.touch(b.id, '2030-03-01T12:00:00Z')).toBe(true);
    expect((await db.apiKeys.findActiveByHash(b.hash))?.lastUsedAt).toBe('2030-03-01T12:00:00.000Z');
    expect(await db.apiKeys.touch('key_missing')).toBe(false);
  });
});

describeStore('idempotency keys repository', (h) => {
  const TTL = 60_000;

  it('starts, reports in progress, replays the stored response, and detects a different body', async () => {
    const k = uid('idem');
    expect(await h.store.idempotency.begin('acme', k, 'hash-1', TTL)).toEqual({ kind: 'started' });
    expect(await h.store.idempotency.begin('acme', k, 'hash-1', TTL)).toMatchObject({ kind: 'in_progress' });
    expect(await h.store.idempotency.begin('acme', k, 'hash-2', TTL)).toEqual({ kind: 'mismatch' });

    const body = { success: true, refund: { id: 're_1', amount: 500 } };
    expect(await h.store.idempotency.complete('acme', k, 201, body)).toBe(true);
    expect(await h.store.idempotency.complete('acme', k, 500, {})).toBe(false);
    expect(await h.store.idempotency.begin('acme', k, 'hash-1', TTL)).toEqual({
      kind: 'replay',
      status: 201,
      body,
    });
    expect(await h.store.idempotency.begin('acme', k, 'hash-2', TTL)).toEqual({ kind: 'mismatch' });
    // keys are per owner
    expect(await h.store.idempotency.begin('other', k, 'hash-2', TTL)).toEqual({ kind: 'started' });
  });

  it('abandon frees an in-progress key for a retry but never drops a finished one', async () => {
    const k = uid('idem');
    await h.store.idempotency.begin('acme', k, 'h', TTL);
    expect(await h.store.idempotency.abandon('acme', k)).toBe(true);
    expect(await h.store.idempotency.begin('acme', k, 'h', TTL)).toEqual({ kind: 'started' });
    await h.store.idempotency.complete('acme', k, 200, { ok: 1 });
    expect(await h.store.idempotency.abandon('acme', k)).toBe(false);
    expect(await h.store.idempotency.begin('acme', k, 'h', TTL)).toEqual({
      kind: 'replay',
      status: 200,
      body: { ok: 1 },
    });
  });

  it('a key left in progress by a request that died is taken over by one retry after IN_PROGRESS_STALE_MS', async () => {
    const db = await h.open(h.newDatabase());
    const DAY = 24 * 3_600_000;
    const t0 = new Date('2034-02-01T00:00:00Z');
    const at = (ms: number) => new Date(t0.getTime() + ms);
    expect(await db.idempotency.begin('acme', 'died', 'h1', DAY, t0)).toEqual({ kind: 'started' });
    // Never completed nor abandoned: its process died. Until the claim is stale, a retry waits.
    expect(await db.idempotency.begin('acme', 'died', 'h1', DAY, at(IN_PROGRESS_STALE_MS - 1))).toEqual({
      kind: 'in_progress',
      since: t0.toISOString(),
    });
    // Another body is still refused, stale or not.
    expect(await db.idempotency.begin('acme', 'died', 'h2', DAY, at(IN_PROGRESS_STALE_MS))).toEqual({
      kind: 'mismatch',
    });
    // Two retries at once: one takes the key over, the other sees it in progress (the new claim is fresh).
    const retries = await Promise.all([
      db.idempotency.begin('acme', 'died', 'h1', DAY, at(IN_PROGRESS_STALE_MS)),
      db.idempotency.begin('acme', 'died', 'h1', DAY, at(IN_PROGRESS_STALE_MS)),
    ]);
    expect(retries.map((r) => r.kind).sort()).toEqual(['in_progress', 'started']);
    expect(await db.idempotency.complete('acme', 'died', 200, { ok: 2 })).toBe(true);
    // A finished key is never taken over, however old.
    expect(await db.idempotency.begin('acme', 'died', 'h1', DAY, at(3 * IN_PROGRESS_STALE_MS))).toEqual({
      kind: 'replay',
      status: 200,
      body: { ok: 2 },
    });
  });

  it('a request whose claim was taken over finishes without touching the claim that took its key', async () => {
    const db = await h.open(h.newDatabase());
    const DAY = 24 * 3_600_000;
    const t0 = new Date('2034-03-01T00:00:00Z');
    const retryAt = new Date(t0.getTime() + IN_PROGRESS_STALE_MS);
    // The first request's process is paused for longer than a claim lives; a retry takes the key over.
    expect(await db.idempotency.begin('acme', 'paused', 'h1', DAY, t0)).toEqual({ kind: 'started' });
    expect(await db.idempotency.begin('acme', 'paused', 'h1', DAY, retryAt)).toEqual({ kind: 'started' });

    // The paused request wakes up: its 5xx does not free the key under the retry still at work...
    expect(await db.idempotency.abandon('acme', 'paused', t0)).toBe(false);
    expect(await db.idempotency.begin('acme', 'paused', 'h1', DAY, retryAt)).toEqual({
      kind: 'in_progress',
      since: retryAt.toISOString(),
    });
    // ...nor does its answer become the one replayed for the key.
    expect(await db.idempotency.complete('acme', 'paused', 200, { by: 'paused' }, t0)).toBe(false);
    expect(await db.idempotency.complete('acme', 'paused', 200, { by: 'retry' }, retryAt)).toBe(true);
    expect(await db.idempotency.begin('acme', 'paused', 'h1', DAY, retryAt)).toEqual({
      kind: 'replay',
      status: 200,
      body: { by: 'retry' },
    });
  });
  it('purgeExpired deletes every expired key when they take several batches, and no other', async () => {
    const db = await h.open(h.newDatabase());
    const t0 = new Date('2034-01-01T00:00:00Z');
    const later = new Date(t0.getTime() + TTL);
    for (const key of ['k1', 'k2', 'k3', 'k4', 'k5']) await db.idempotency.begin('acme', key, 'h1', TTL, t0);
    await db.idempotency.begin('other', 'k1', 'h1', TTL, t0);
    await db.idempotency.begin('acme', 'fresh', 'h1', TTL, later);

    expect(await db.idempotency.purgeExpired(later, 2)).toBe(6);
    expect(await db.idempotency.begin('acme', 'k1', 'h9', TTL, later)).toEqual({ kind: 'started' });
    expect(await db.idempotency.begin('acme', 'fresh', 'h9', TTL, later)).toEqual({ kind: 'mismatch' });
  });

  it('treats an expired key as new, and purgeExpired deletes expired keys only', async () => {
    const db = await h.open(h.newDatabase());
    const t0 = new Date('2034-01-01T00:00:00Z');
    const later = new Date(t0.getTime() + TTL);
    await db.idempotency.begin('acme', 'done', 'h1', TTL, t0);
    await db.idempotency.complete('acme', 'done', 200, { v: 1 });
    await db.idempotency.begin('acme', 'stuck', 'h1', TTL, t0);
    await db.idempotency.begin('acme', 'fresh', 'h1', TTL, later);

    expect(await db.idempotency.begin('acme', 'done', 'h2', TTL, new Date(later.getTime() - 1))).toEqual({
      kind: 'mismatch',
    });
    expect(await db.idempotency.begin('acme', 'done', 'h2', TTL, later)).toEqual({ kind: 'started' });
    expect(await db.idempotency.begin('acme', 'done', 'h2', TTL, later)).toMatchObject({
      kind: 'in_progress',
    });

    expect(await db.idempotency.purgeExpired(later)).toBe(1); // 'stuck'
    expect(await db.idempotency.purgeExpired(later)).toBe(0);
    expect(await db.idempotency.begin('acme', 'stuck', 'h9', TTL, later)).toEqual({ kind: 'started' });
    expect(await db.idempotency.begin('acme', 'fresh', 'h1', TTL, later)).toMatchObject({
      kind: 'in_progress',
    });
  });
});
