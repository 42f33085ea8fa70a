/**
 * A deployment with API keys required but none provisioned refuses every request with 401; the operator hears
 * why at start, not from the first client's complaint.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from '../helpers/service.js';

const warning = (svc: TestService) =>
  svc.lines
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .filter((l) => l.level === 40 && /no API key/.test(l.msg));

describe('start with API keys required', () => {
  let svc: TestService | undefined;
  afterEach(async () => {
    await svc?.stop();
    svc = undefined;
  });

  it('warns that every request will be refused when no key exists', async () => {
    svc = await startTestService('sqlite', { API_AUTH: 'on' });
    expect(warning(svc)).toHaveLength(1);
    expect(warning(svc)[0]!.msg).toMatch(/API_KEYS/);
    const res = await fetch(`${svc.url}/refund-status/anything`);
    expect(res.status).toBe(401);
  });

  it('says nothing of the kind once a key is provisioned', async () => {
    svc = await startTestService('sqlite', {
      API_AUTH: 'on',
      API_KEYS: 'shop|refunds:read|psk_provisioned_key_for_the_warning_test_0001',
    });
    expect(warning(svc)).toEqual([]);
  });
});

describe('start with API keys provisioned but authentication off', () => {
  it('warns that the keys are not asked for, and they are not', async () => {
    const svc = await startTestService('sqlite', {
      API_AUTH: 'off',
      API_KEYS: 'shop|refunds:read|psk_provisioned_key_for_the_warning_test_0002',
    });
    try {
      const warnings = svc.lines
        .map((l) => JSON.parse(l) as { level: number; msg: string })
        .filter((l) => l.level === 40 && /API_KEYS is set but authentication is off/.test(l.msg));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.msg).toMatch(/API_AUTH=on/);
      expect(svc.lines.join('\n')).not.toContain('psk_provisioned_key_for_the_warning_test_0002');
      // What the warning is about: a request without a key is served.
      expect((await fetch(`${svc.url}/refund-status/anything`)).status).toBe(404);
    } finally {
      await svc.stop();
    }
  });
});
