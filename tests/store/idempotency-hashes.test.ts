/**
 * An Idempotency-Key compares a body as the service takes it; a key kept by a version before holds the hash of the
 * body as sent. begin() given both (the one to keep first) matches a kept key by either, and keeps the first.
 */
import { expect, it } from 'vitest';
import { describeStore, uid } from './harness.js';

describeStore('idempotency keys known by more than one hash', (h) => {
  const TTL = 60_000;

  it('a key kept under the hash of the body as sent replays for the body as taken, and keeps the first hash', async () => {
    const earlier = uid('idem');
    // Kept by a version before: the hash of the body as sent.
    expect(await h.store.idempotency.begin('acme', earlier, 'as-sent', TTL)).toEqual({ kind: 'started' });
    expect(await h.store.idempotency.begin('acme', earlier, ['as-taken', 'as-sent'], TTL)).toMatchObject({
      kind: 'in_progress',
    });
    expect(await h.store.idempotency.complete('acme', earlier, 200, { ok: 1 })).toBe(true);
    expect(await h.store.idempotency.begin('acme', earlier, ['as-taken', 'as-sent'], TTL)).toEqual({
      kind: 'replay',
      status: 200,
      body: { ok: 1 },
    });
    // Another body is still another request, whichever of its hashes is tried.
    expect(await h.store.idempotency.begin('acme', earlier, ['as-taken', 'other'], TTL)).toEqual({
      kind: 'mismatch',
    });
    expect(await h.store.idempotency.begin('acme', earlier, 'as-taken', TTL)).toEqual({ kind: 'mismatch' });

    // Kept by this version: the first hash, which a body sent otherwise but taken the same also gives first.
    const now = uid('idem');
    expect(await h.store.idempotency.begin('acme', now, ['as-taken', 'as-sent'], TTL)).toEqual({
      kind: 'started',
    });
    expect(await h.store.idempotency.complete('acme', now, 201, { ok: 2 })).toBe(true);
    expect(await h.store.idempotency.begin('acme', now, 'as-taken', TTL)).toEqual({
      kind: 'replay',
      status: 201,
      body: { ok: 2 },
    });
    expect(await h.store.idempotency.begin('acme', now, ['as-taken', 'sent-otherwise'], TTL)).toMatchObject({
      kind: 'replay',
    });
    expect(await h.store.idempotency.begin('acme', now, 'as-sent', TTL)).toEqual({ kind: 'mismatch' });
  });
});
