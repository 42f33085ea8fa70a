/** Which listen addresses count as loopback, and which Host headers a server on loopback answers. */
import { describe, expect, it } from 'vitest';
import {
  allowedHostMatcher,
  configuredHostName,
  isLoopbackAddress,
  isLoopbackHost,
  parseAllowedHosts,
} from '../../src/http/loopback-host.js';

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

describe('ALLOWED_HOSTS', () => {
  it('takes comma-separated names, trimmed, in lower case, without a final dot', () => {
    expect(parseAllowedHosts(' Tunnel.Example ,*.NGROK.example,shop.test.')).toEqual([
      'tunnel.example',
      '*.ngrok.example',
      'shop.test',
    ]);
  });

  it('answers a listed name in any case, with or without a port, and nothing else', () => {
    const allowed = allowedHostMatcher(parseAllowedHosts('tunnel.example'));
    for (const h of ['tunnel.example', 'tunnel.example:443', 'TUNNEL.Example:5000', 'tunnel.example.'])
      expect([h, allowed(h)]).toEqual([h, true]);
    for (const h of [
      undefined,
      '',
      'evil.example',
      'sub.tunnel.example',
      'tunnel.example.evil.example',
      'xtunnel.example',
      'tunnel.examplex',
      'tunnel.example:443x',
      'tunnel.example:443:443',
      'tunnel.example@evil.example',
      'evil.example/tunnel.example',
    ])
      expect([h, allowed(h)]).toEqual([h, false]);
  });

  it('answers any subdomain of a *. entry, not the domain itself nor a name that only ends like it', () => {
    const allowed = allowedHostMatcher(parseAllowedHosts('*.tunnel.example'));
    for (const h of ['a1b2.tunnel.example', 'a.b.tunnel.example:443', 'A-B.Tunnel.Example'])
      expect([h, allowed(h)]).toEqual([h, true]);
    for (const h of [
      'tunnel.example',
      'eviltunnel.example',
      '.tunnel.example',
      'a..tunnel.example',
      'evil.example/.tunnel.example',
      'a b.tunnel.example',
      'a.tunnel.example.evil.example',
    ])
      expect([h, allowed(h)]).toEqual([h, false]);
  });

  it('refuses what would not name one host, saying which item and why', () => {
    const cases: [string, RegExp][] = [
      ['', /^item 1 of 1 is empty/],
      ['a.example,', /^item 2 of 2 is empty/],
      ['a.example,,b.example', /^item 2 of 3 is empty/],
      ['https://tunnel.example', /^item 1 of 1 \("https:\/\/tunnel.example"\) is a URL: .*tunnel\.example/],
      ['tunnel.example/webhook', /^item 1 of 1 \("tunnel.example\/webhook"\) has a path/],
      ['*', /^item 1 of 1 is "\*".*DNS rebinding/],
      ['a.example, * ', /^item 2 of 2 is "\*"/],
      ['*.example', /^item 1 of 1 \("\*.example"\) .*two labels/],
      ['tunnel.example:443', /^item 1 of 1 \("tunnel.example:443"\) has a port/],
      ['a.*.example', /^item 1 of 1 \("a.\*.example"\) is not a host name/],
      ['*tunnel.example', /is not a host name/],
      ['tunnel example', /is not a host name/],
      ['[::1]', /is not a host name/],
    ];
    for (const [value, message] of cases) expect(() => parseAllowedHosts(value), value).toThrow(message);
  });
});
