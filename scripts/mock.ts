/**
 * `npm run mock [-- --port N]`: Prism serving openapi.yaml's examples on 127.0.0.1, port 4010 unless `--port` or
 * MOCK_PORT says otherwise (`--port` wins). Any other argument goes to Prism as it is (`--errors`, `--dynamic`).
 * With the port fixed in package.json, `npm run mock -- --port 4011` handed Prism two ports, and it refused to start.
 *
 * Prism listens on a private port behind a pass-through that leaves out the request's `Accept`: the service answers
 * each status in its one media type whatever `Accept` says, and Prism on its own picks by it. Every error of the
 * contract is application/problem+json only, so a `Prefer: code=404` sent with `Accept: application/json` (what the
 * clients openapi-generator makes for Python and Java send) found no 404 to answer and got the 200 example instead.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { createServer as createNetServer } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';

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

/** A port nothing listens on now, for Prism (only this script talks to it). */
function privatePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

// Hop-by-hop headers are this connection's own, not the answer's.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding']);

const inner = await privatePort();
const server = http.createServer((req, res) => {
  const { accept: _accept, ...headers } = req.headers;
  const upstream = http.request(
    { host: HOST, port: inner, method: req.method, path: req.url, headers },
    (answer) => {
      const raw: string[] = [];
      for (let i = 0; i < answer.rawHeaders.length; i += 2) {
        if (!HOP_BY_HOP.has(answer.rawHeaders[i]!.toLowerCase()))
          raw.push(answer.rawHeaders[i]!, answer.rawHeaders[i + 1]!);
      }
      res.writeHead(answer.statusCode ?? 502, raw);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => {
    if (res.headersSent) res.destroy();
    else res.writeHead(502, { 'content-type': 'text/plain' }).end('The mock (Prism) is not answering.\n');
  });
  req.pipe(upstream);
});
await new Promise<void>((resolve) => {
  server.once('error', (err: NodeJS.ErrnoException) =>
    fail(
      err.code === 'EADDRINUSE'
        ? `port ${port} is taken; choose another with --port or MOCK_PORT.`
        : `cannot listen on ${HOST}:${port} (${err.message}).`,
    ),
  );
  server.listen(Number(port), HOST, resolve);
});

const args = ['mock', path.join(root, 'openapi.yaml'), '--host', HOST, '--port', String(inner), ...passed];
const prism = spawn(PRISM, args, { stdio: ['inherit', 'pipe', 'pipe'] });
prism.on('error', (err) => fail(`could not start Prism (${PRISM}): ${err.message}`));
// Prism's lines name its private address; the user calls the public one.
const privateOrigin = `${HOST}:${inner}`;
for (const [from, to] of [
  [prism.stdout, process.stdout],
  [prism.stderr, process.stderr],
] as const) {
  createInterface({ input: from, crlfDelay: Infinity }).on('line', (line) =>
    to.write(`${line.replaceAll(privateOrigin, `${HOST}:${port}`)}\n`),
  );
}

// Stopped (Ctrl-C, a supervisor's SIGTERM), Prism is stopped too, and this ends as it does.
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
for (const signal of SIGNALS) process.on(signal, () => prism.kill(signal));
prism.on('exit', (code, signal) => {
  for (const s of SIGNALS) process.removeAllListeners(s);
  server.closeAllConnections();
  server.close();
  if (signal) process.kill(process.pid, signal);
  else process.exitCode = code ?? 1;
});
