/** Runs one autocannon load in a separate node process and returns its figures. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LoadOutput, LoadSpec } from './load-types.js';

const CHILD = fileURLToPath(new URL('../load-child.ts', import.meta.url));

export function runLoad(spec: LoadSpec): Promise<LoadOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        if (code !== 0) throw new Error(`exit ${code}`);
        resolve(JSON.parse(line) as LoadOutput);
      } catch (e) {
        reject(new Error(`load child failed (${(e as Error).message}): ${err.slice(-2000)}`));
      }
    });
  });
}
