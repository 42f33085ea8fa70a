import { describe, expect, it } from 'vitest';
import { rabbitUrlFromEnv } from '../../src/queue/index.js';

describe('rabbitUrlFromEnv', () => {
  it('returns null (embedded mode) when nothing is configured', () => {
    expect(rabbitUrlFromEnv({})).toBeNull();
    expect(rabbitUrlFromEnv({ RABBITMQ_USER: 'app', RABBITMQ_PASSWORD: 'x' })).toBeNull();
    expect(rabbitUrlFromEnv({ RABBITMQ_URL: '  ', RABBITMQ_HOST: '' })).toBeNull();
  });

  it('prefers RABBITMQ_URL', () => {
    expect(
      rabbitUrlFromEnv({ RABBITMQ_URL: 'amqps://u:p@mq.example:5671/prod', RABBITMQ_HOST: 'other' }),
    ).toBe('amqps://u:p@mq.example:5671/prod');
  });

  it('rejects a URL that is not AMQP', () => {
    expect(() => rabbitUrlFromEnv({ RABBITMQ_URL: 'http://mq:15672' })).toThrow(/amqp/);
  });

  it("builds a URL from the original service's variables, with guest defaults", () => {
    expect(rabbitUrlFromEnv({ RABBITMQ_HOST: 'localhost' })).toBe('amqp://guest:guest@localhost:5672');
    expect(
      rabbitUrlFromEnv({
        RABBITMQ_HOST: 'mq',
        RABBITMQ_PORT: '5673',
        RABBITMQ_USER: 'svc',
        RABBITMQ_PASSWORD: 'pw',
      }),
    ).toBe('amqp://svc:pw@mq:5673');
    expect(rabbitUrlFromEnv({ RABBITMQ_HOST: 'mq', RABBITMQ_PORT: 5674 })).toBe('amqp://guest:guest@mq:5674');
  });

  it('encodes credentials and vhost so special characters cannot change the URL', () => {
    const url = rabbitUrlFromEnv({
      RABBITMQ_HOST: 'mq',
      RABBITMQ_USER: 'a@b',
      RABBITMQ_PASSWORD: 'p:/@#?',
      RABBITMQ_VHOST: 'pay/ments',
    });
    expect(url).toBe('amqp://a%40b:p%3A%2F%40%23%3F@mq:5672/pay%2Fments');
    const parsed = new URL(url ?? '');
    expect(decodeURIComponent(parsed.username)).toBe('a@b');
    expect(decodeURIComponent(parsed.password)).toBe('p:/@#?');
    expect(parsed.hostname).toBe('mq');
  });

  it('treats the default vhost "/" as no path and brackets IPv6 hosts', () => {
    expect(rabbitUrlFromEnv({ RABBITMQ_HOST: 'mq', RABBITMQ_VHOST: '/' })).toBe('amqp://guest:guest@mq:5672');
    expect(rabbitUrlFromEnv({ RABBITMQ_HOST: '::1' })).toBe('amqp://guest:guest@[::1]:5672');
  });

  it.each(['0', '70000', 'abc', '56.7'])('rejects RABBITMQ_PORT=%s', (port) => {
    expect(() => rabbitUrlFromEnv({ RABBITMQ_HOST: 'mq', RABBITMQ_PORT: port })).toThrow(/RABBITMQ_PORT/);
  });
});
