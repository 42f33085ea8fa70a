/** Which listen addresses count as loopback, and which Host headers a server on loopback answers. */
import { describe, expect, it } from 'vitest';
import { configuredHostName, isLoopbackAddress, isLoopbackHost } from '../../src/http/loopback-host.js';

describe('isLoopbackAddress', () => {
  it.each(['127.0.0.1', '127.0.1.1', '::1', '[::1]', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST'])(
    '%s is loopback',
    (a) => expect(isLoopbackAddress(a)).toBe(true),
  );
  it.each(['0.0.0.0', '::', '192.168.1.5', '10.0.0.1', '::ffff:10.0.0.1', 'payments.internal', '128.0.0.1'])(
    '%s is not',
    (a) => expect(isLoopbackAddress(a)).toBe(false),
  );
});

describe('isLoopbackHost', () => {
  it('answers loopback names with or without a port, and a request without Host', () => {
    for (const h of ['localhost', 'localhost:5000', 'a.b.localhost:1', '127.255.0.9:80', '[::1]', undefined])
      expect([h, isLoopbackHost(h)]).toEqual([h, true]);
  });
  it('refuses every other name', () => {
    for (const h of [
      '',
      'evil.example',
      'localhost.evil',
      'localhost:5000@evil',
      '127.0.0.1.evil',
      '[::1].x',
    ])
      expect([h, isLoopbackHost(h)]).toEqual([h, false]);
  });
  it('answers the name the server was configured under (HOST, SANDBOX_PUBLIC_URL), with any port', () => {
    const name = configuredHostName('Shop.Test');
    expect(name).toBe('shop.test');
    expect(isLoopbackHost('shop.test:5000', name)).toBe(true);
    expect(isLoopbackHost('SHOP.TEST', name)).toBe(true);
    expect(isLoopbackHost('shop.test.evil.example', name)).toBe(false);
    expect(isLoopbackHost('shop.testx:5000', name)).toBe(false);
    // Addresses are not names: 0.0.0.0 and ::1 give nothing more.
    expect(configuredHostName('0.0.0.0')).toBeUndefined();
    expect(configuredHostName('::1')).toBeUndefined();
  });
});
