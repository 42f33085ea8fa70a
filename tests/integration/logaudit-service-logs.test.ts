/**
 * What a running service logs when Stripe refuses its key and when a request's URL carries secrets: Stripe quotes
 * the key's last characters ("Invalid API Key provided: sk_test_****AIL9"), the request line held a client secret
 * after `%3D` (an encoded return URL), where the logger's filter did not look, and any credential a client put in
 * the query string under a name that says so (?api_key=, ?password=).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/index.js';
import { getJson, postJson } from '../helpers/http.js';
import { eventually, startTestService, type TestService } from '../helpers/service.js';

// Shaped like the compose file's key: underscores within.
const WRONG_KEY = 'sk_test_compose_wrong_key_TailX9';

describe('secrets in the logs of a running service', () => {
  let sandbox: Sandbox;
  let service: TestService;

  beforeAll(async () => {
    sandbox = await startSandbox({ secretKey: 'sk_test_theKeyStripeKnows0000000001' });
    service = await startTestService('sqlite', {
      STRIPE_SECRET_KEY: WRONG_KEY,
      STRIPE_API_BASE: sandbox.url,
      API_AUTH: 'off',
    });
  });
  afterAll(async () => {
    await service?.stop();
    await sandbox?.close();
  });

  it('says Stripe refused the key without any part of it', async () => {
    const answer = await postJson(`${service.url}/payment-intent`, { amount: 1000, currency: 'usd' });
    expect(answer.status).toBe(502);
    expect(answer.json.code).toBe('upstream_authentication');
    const logs = await eventually(
      async () => service.lines.join('\n'),
      (text) => text.includes('Invalid API Key provided'),
    );
    expect(logs).toContain('Invalid API Key provided: sk_test_[REDACTED]');
    expect(logs).not.toContain('TailX9');
    expect(logs).not.toContain('X9"');
    expect(logs).not.toContain('compose_wrong_key');
  });

  it('logs a request whose URL carries a client secret in an encoded return URL without the secret', async () => {
    const returnUrl = encodeURIComponent(
      'https://shop.example/done?payment_intent=pi_3Abc&payment_intent_client_secret=pi_3Abc_secret_Leak7QxZ',
    );
    const answer = await getJson(`${service.url}/payment-intent/pi_3Abc?return_url=${returnUrl}`);
    expect(answer.status).toBe(400);
    const line = await eventually(
      async () => service.lines.find((l) => l.includes('request completed') && l.includes('return_url')),
      (l) => l !== undefined,
    );
    expect(line).toContain('pi_3Abc_secret_[REDACTED]');
    expect(line).not.toContain('Leak7QxZ');
  });

  it('logs a request whose query string carries credentials without them', async () => {
    const answer = await getJson(`${service.url}/refund-status/r1?api_key=shopKey55&password=hunter2Q`);
    expect(answer.status).toBe(400);
    const line = await eventually(
      async () =>
        service.lines.find((l) => l.includes('request completed') && l.includes('/refund-status/r1')),
      (l) => l !== undefined,
    );
    expect(line).toContain('/refund-status/r1?api_key=[REDACTED]&password=[REDACTED]');
    expect(line).not.toContain('shopKey55');
    expect(line).not.toContain('hunter2Q');
  });
});
