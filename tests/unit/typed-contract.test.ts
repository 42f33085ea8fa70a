/**
 * Proves at run time what tests/types/handlers.types.ts proves at compile time: the compiler rejects a
 * handler table that misses an operation or answers an undocumented status.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');
let dir: string | undefined;

async function compile(source: string): Promise<{ ok: boolean; output: string }> {
  dir ??= await mkdtemp(path.join(root, 'tests', '.tsc-'));
  const file = path.join(dir, 'probe.ts');
  await writeFile(file, source);
  try {
    await run(
      process.execPath,
      [
        path.join(root, 'node_modules/typescript/bin/tsc'),
        '--noEmit',
        '--strict',
        '--skipLibCheck',
        '--module',
        'NodeNext',
        '--moduleResolution',
        'NodeNext',
        '--target',
        'ES2022',
        '--types',
        'node',
        file,
      ],
      { cwd: root },
    );
    return { ok: true, output: '' };
  } catch (err) {
    return { ok: false, output: String((err as { stdout?: string }).stdout ?? err) };
  }
}

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const header = `import type { Handlers, Handler } from '../../src/http/operations.js';
import { notImplemented } from '../../src/http/operations.js';
`;
const complete = `
  createCheckoutSession: notImplemented('createCheckoutSession'),
  getCheckoutSession: notImplemented('getCheckoutSession'),
  createPaymentIntent: notImplemented('createPaymentIntent'),
  getPaymentIntent: notImplemented('getPaymentIntent'),
  createRefund: notImplemented('createRefund'),
  createRefundAsync: notImplemented('createRefundAsync'),
  getRefundStatus: notImplemented('getRefundStatus'),
  handleStripeWebhook: notImplemented('handleStripeWebhook'),
  getHealth: notImplemented('getHealth'),
  getReadiness: notImplemented('getReadiness'),
  getMetrics: notImplemented('getMetrics'),`;

describe('typed handlers', () => {
  it('a complete handler table compiles', async () => {
    const result = await compile(`${header}export const h: Handlers = {${complete}\n};\n`);
    expect(result.output).toBe('');
    expect(result.ok).toBe(true);
  }, 60_000);

  it('a missing operation fails to compile, naming it', async () => {
    const missing = complete.replace(/\n\s+getRefundStatus:[^\n]+/, '');
    const result = await compile(`${header}export const h: Handlers = {${missing}\n};\n`);
    expect(result.ok).toBe(false);
    expect(result.output).toContain('getRefundStatus');
  }, 60_000);

  it('an undocumented status fails to compile', async () => {
    const result = await compile(
      `${header}export const h: Handler<'getRefundStatus'> = async () => ({ status: 201, body: { success: true, refund_id: null, status: 'queued', amount: 1, request_id: 'r' } });\n`,
    );
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/TS2322/);
  }, 60_000);
});
