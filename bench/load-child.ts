/**
 * One load run in its own process, so the generator never shares an event loop with what it measures.
 * Reads a LoadSpec (JSON) from argv[2], drives autocannon, and prints one LoadOutput JSON line on stdout.
 */
import { writeFileSync } from 'node:fs';
import autocannon from 'autocannon';
import type { LoadOutput, LoadSpec } from './lib/load-types.js';

const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;

let counter = 0;
const accepted: string[] = [];
const statuses: Record<string, number> = {};
const next = <T>(list: readonly T[]): T => list[counter++ % list.length]!;

function request(): autocannon.Request {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(spec.headers ?? {}) };
  switch (spec.kind) {
    case 'create-payment-intent':
      return {
        method: 'POST',
        path: '/payment-intent',
        headers,
        body: JSON.stringify({ amount: 2000, currency: 'usd' }),
      };
    case 'get-payment-intent':
      return {
        method: 'GET',
        path: '/payment-intent/',
        headers,
        setupRequest: (req) => ({ ...req, path: `/payment-intent/${next(spec.ids ?? [])}` }),
      };
    case 'refund-async':
      return {
        method: 'POST',
        path: '/refund-async',
        headers,
        setupRequest: (req) => {
          const n = counter++;
          const pi = spec.ids![n % spec.ids!.length]!;
          return {
            ...req,
            body: JSON.stringify({ payment_intent_id: pi, amount: 1, request_id: `${spec.idPrefix}-${n}` }),
          };
        },
        onResponse: (status, body) => {
          if (status === 202) accepted.push((JSON.parse(body) as { request_id: string }).request_id);
        },
      };
    case 'refund-status':
      return {
        method: 'GET',
        path: '/refund-status/',
        headers,
        setupRequest: (req) => ({ ...req, path: `/refund-status/${next(spec.ids ?? [])}` }),
      };
  }
}

const latencies: number[] = [];
const cpuStart = process.cpuUsage();
const instance = autocannon({
  url: spec.url,
  connections: spec.connections,
  ...(spec.amount ? { amount: spec.amount } : { duration: spec.durationSec }),
  timeout: 10,
  requests: [request()],
});
instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
  statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
  latencies.push(responseTime);
});

const result = await instance;
const cpu = process.cpuUsage(cpuStart);
if (spec.acceptedFile) writeFileSync(spec.acceptedFile, accepted.join('\n'));
// Every response time, so rounds of one scenario can be merged into exact percentiles.
if (spec.latencyFile) writeFileSync(spec.latencyFile, Buffer.from(new Float64Array(latencies).buffer));
const ok = Object.entries(statuses)
  .filter(([s]) => spec.expectStatus.includes(Number(s)))
  .reduce((n, [, c]) => n + c, 0);
const out: LoadOutput = {
  durationSec: result.duration,
  requests: result.requests.total,
  ok,
  okPerSec: ok / result.duration,
  statuses,
  errors: result.errors,
  timeouts: result.timeouts,
  latencyMs: {
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    p999: result.latency.p99_9,
    max: result.latency.max,
    mean: result.latency.mean,
  },
  accepted: accepted.length,
  cpuUs: cpu.user + cpu.system,
};
process.stdout.write(`${JSON.stringify(out)}\n`);
