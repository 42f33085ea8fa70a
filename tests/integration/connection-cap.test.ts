/**
 * Open connections, idle ones included, are capped (MAX_CONNECTIONS). MAX_CONCURRENT_REQUESTS counts requests
 * only, and a connection that sends nothing is kept until Node's header timeout (a minute): 20,000 idle
 * connections took the built service from 88 to 186 MB RSS, past the memory a deployment gives it, and anyone
 * who can reach the port can open them. Past the cap a new connection is closed as it arrives, and the service
 * serves again as soon as connections are let go.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

const CAP = 10;
let svc: TestService;

beforeAll(async () => {
  svc = await startTestService('sqlite', {
    MAX_CONNECTIONS: String(CAP),
    RATE_LIMIT_PER_MINUTE: '0',
    LOG_LEVEL: 'warn',
  });
});
afterAll(async () => {
  await svc?.stop();
});

function openIdle(count: number): Promise<Socket[]> {
  const { port } = new URL(svc.url);
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const s = connect(Number(port), '127.0.0.1', () => resolve(s));
          s.on('error', reject);
        }),
    ),
  );
}

/** GET /healthz on a connection of its own: its status, or the error that ended it. */
async function healthOnNewConnection(): Promise<number | string> {
  try {
    const res = await fetch(`${svc.url}/healthz`, {
      headers: { connection: 'close' },
      signal: AbortSignal.timeout(5000),
    });
    return res.status;
  } catch (err) {
    return String((err as Error).cause ?? err);
  }
}

describe('MAX_CONNECTIONS', () => {
  it('closes connections past the cap, says so once, and serves again once connections are let go', async () => {
    expect(await healthOnNewConnection()).toBe(200);
    const idle = await openIdle(CAP);
    try {
      const refused = await healthOnNewConnection();
      expect(refused).not.toBe(200);
      expect(String(refused)).toMatch(/ECONNRESET|socket|closed|terminated/i);
      await healthOnNewConnection();
      const warnings = svc.lines.filter((l) => l.includes('MAX_CONNECTIONS connections are open'));
      expect(warnings).toHaveLength(1);
    } finally {
      for (const s of idle) s.destroy();
    }
    await expect.poll(healthOnNewConnection, { timeout: 5000, interval: 100 }).toBe(200);
  });
});
