/**
 * Where the service listens when HOST is not set. Without API keys (embedded mode's default, or API_AUTH=off)
 * anyone who reaches the port can pay and refund, so only this machine may reach it; with keys, every address.
 */
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

/** An IPv4 address of this machine that other machines on its network can reach (not loopback). */
const lan = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address;

let svc: TestService | undefined;
afterEach(async () => {
  await svc?.stop();
  svc = undefined;
});

/** The status of GET /healthz at `host`, or the connection error's code. */
async function healthAt(host: string, port: string): Promise<number | string> {
  try {
    return (await fetch(`http://${host}:${port}/healthz`, { signal: AbortSignal.timeout(5000) })).status;
  } catch (err) {
    return String((err as { cause?: { code?: unknown } }).cause?.code ?? err);
  }
}

// HOST '' is HOST unset (the test helper sets 127.0.0.1 otherwise).
describe.skipIf(lan === undefined)(`listen address without HOST (this machine is also ${lan})`, () => {
  it('API keys off (embedded mode): this machine only, not the network', async () => {
    svc = await startTestService('sqlite', { HOST: '' });
    const { port } = new URL(svc.url);
    expect(await healthAt('127.0.0.1', port)).toBe(200);
    expect(await healthAt(lan!, port)).toBe('ECONNREFUSED');
  });

  it('API_AUTH=off with HOST=0.0.0.0 listens on every address, as asked', async () => {
    svc = await startTestService('sqlite', { HOST: '0.0.0.0', API_AUTH: 'off' });
    expect(await healthAt(lan!, new URL(svc.url).port)).toBe(200);
  });

  it('API keys on: every address, as before', async () => {
    svc = await startTestService('sqlite', { HOST: '', API_AUTH: 'on' });
    const { port } = new URL(svc.url);
    expect(await healthAt(lan!, port)).toBe(200);
    expect(await healthAt('127.0.0.1', port)).toBe(200);
  });
});
