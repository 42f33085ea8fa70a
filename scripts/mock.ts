/**
 * `npm run mock [-- --port N]`: Prism serving openapi.yaml's examples on 127.0.0.1, port 4010 unless `--port` or
 * MOCK_PORT says otherwise (`--port` wins). Any other argument goes to Prism as it is (`--errors`, `--dynamic`).
 * With the port fixed in package.json, `npm run mock -- --port 4011` handed Prism two ports, and it refused to start.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const PRISM = path.join(root, 'node_modules', '.bin', 'prism');
const DEFAULT_PORT = '4010';
const HOST = '127.0.0.1';

function fail(message: string): never {
  console.error(`npm run mock: ${message}`);
  process.exit(2);
}

function portOf(value: string | undefined, from: string): string {
  if (value === undefined || !/^\d{1,5}$/.test(value) || Number(value) < 1 || Number(value) > 65535)
    fail(`${from} must be a port number from 1 to 65535 (got ${JSON.stringify(value ?? '')}).`);
  return String(Number(value));
}

let port = process.env['MOCK_PORT'] ? portOf(process.env['MOCK_PORT'], 'MOCK_PORT') : DEFAULT_PORT;
const passed: string[] = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i]!;
  if (arg === '--port' || arg === '-p') port = portOf(argv[++i], arg);
  else if (arg.startsWith('--port=')) port = portOf(arg.slice('--port='.length), '--port');
  else if (arg === '--host' || arg === '-h' || arg.startsWith('--host='))
    fail(`the mock listens on ${HOST} only (it has no protection); run Prism itself for another host.`);
  else passed.push(arg);
}

const args = ['mock', path.join(root, 'openapi.yaml'), '--host', HOST, '--port', port, ...passed];
const prism = spawn(PRISM, args, { stdio: 'inherit' });
prism.on('error', (err) => fail(`could not start Prism (${PRISM}): ${err.message}`));

// Stopped (Ctrl-C, a supervisor's SIGTERM), Prism is stopped too, and this ends as it does.
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
for (const signal of SIGNALS) process.on(signal, () => prism.kill(signal));
prism.on('exit', (code, signal) => {
  for (const s of SIGNALS) process.removeAllListeners(s);
  if (signal) process.kill(process.pid, signal);
  else process.exitCode = code ?? 1;
});
