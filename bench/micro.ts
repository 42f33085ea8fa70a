/**
 * Micro-measurements of hot store paths, in one process, no network: what one call costs on SQLite after
 * warm-up. For judging a change to one of these paths on a noisy machine, where `npm run bench`'s req/s
 * moves by a third between runs. Not part of `npm test`.
 *
 * Usage: node --import tsx bench/micro.ts [--calls=20000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fromDbTime } from '../src/store/codec.js';
import { createStore } from '../src/store/index.js';

const callsArg = process.argv.find((a) => a.startsWith('--calls='));
const CALLS = Math.max(1000, Number(callsArg?.slice('--calls='.length) ?? 20_000));
const WARMUP = Math.ceil(CALLS / 5);

async function measure(name: string, call: (i: number) => unknown): Promise<void> {
  for (let i = 0; i < WARMUP; i++) await call(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) await call(i);
  const us = Number(process.hrtime.bigint() - start) / 1000 / CALLS;
  console.log(`${name.padEnd(44)} ${us.toFixed(2).padStart(8)} µs/call (${CALLS} calls)`);
}

const dir = mkdtempSync(path.join(tmpdir(), 'bench-micro-'));
const store = await createStore({ url: `sqlite:${path.join(dir, 'ledger.db')}` });
try {
  const hash = 'a'.repeat(64);
  await store.apiKeys.insert({
    id: 'key_micro',
    owner: 'acme',
    name: 'micro',
    kind: 'secret',
    prefix: 'psk_micro',
    hash,
    scopes: ['payments:read'],
  });
  const stamps = Array.from({ length: 64 }, (_, i) => new Date(Date.UTC(2026, 0, 1) + i * 1e7).toISOString());

  await measure('fromDbTime (stored ISO text)', (i) => fromDbTime(stamps[i & 63]!));
  await measure('apiKeys.findActiveByHash', () => store.apiKeys.findActiveByHash(hash));
  await measure('idempotency.begin + complete (new key)', async (i) => {
    const key = `micro-${i}-${Math.random()}`;
    await store.idempotency.begin('acme', key, 'request-hash', 60_000);
    await store.idempotency.complete('acme', key, 200, { ok: true });
  });
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
