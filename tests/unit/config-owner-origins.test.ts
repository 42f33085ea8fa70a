/**
 * OWNER_ORIGINS: each owner's browser origins, for a service that holds several owners (tenants)
 * (tests/integration/owner-origins.test.ts shows what they do). Unset, CORS_ORIGINS is all there is.
 */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { problemsOf } from './config-support.js';

const auth = (env: Record<string, string>) => loadConfig(env).auth;
const owners = (value: string) => Object.fromEntries(auth({ OWNER_ORIGINS: value }).ownerOrigins ?? []);

describe('OWNER_ORIGINS', () => {
  it('is unset by default: no owner has origins of its own, CORS_ORIGINS is all there is', () => {
    expect(auth({}).ownerOrigins).toBeNull();
    expect(auth({ OWNER_ORIGINS: '  ' }).ownerOrigins).toBeNull();
    expect(auth({ CORS_ORIGINS: 'https://shop.example.com' }).corsOrigins).toEqual([
      'https://shop.example.com',
    ]);
  });

  it('reads owner=origin,origin entries separated by spaces or semicolons', () => {
    expect(
      owners('shop=https://shop.example.com,https://www.shop.example.com rival=https://rival.example.org'),
    ).toEqual({
      shop: ['https://shop.example.com', 'https://www.shop.example.com'],
      rival: ['https://rival.example.org'],
    });
    expect(owners(' shop=http://localhost:3000;rival=https://rival.example.org\n')).toEqual({
      shop: ['http://localhost:3000'],
      rival: ['https://rival.example.org'],
    });
    // As browsers send them in Origin: the host in lower case, without the scheme's default port.
    expect(
      owners('shop=https://Shop.Example.com:443,http://shop.example.com:80,https://shop.example.com'),
    ).toEqual({ shop: ['https://shop.example.com', 'http://shop.example.com'] });
    // The scheme too is case-insensitive (RFC 3986 3.1).
    expect(owners('shop=HTTPS://SHOP.EXAMPLE.COM,Http://Shop.Example.com:8080')).toEqual({
      shop: ['https://shop.example.com', 'http://shop.example.com:8080'],
    });
  });

  it('adds every origin it lists to those browsers may call from', () => {
    expect(
      auth({
        CORS_ORIGINS: 'https://partner.example.net,https://shop.example.com',
        OWNER_ORIGINS: 'shop=https://shop.example.com rival=https://rival.example.org',
      }).corsOrigins,
    ).toEqual(['https://partner.example.net', 'https://shop.example.com', 'https://rival.example.org']);
  });

  it('refuses at start a value that is not a list of owners and origins, naming the entry', () => {
    expect(problemsOf({ OWNER_ORIGINS: 'https://shop.example.com' })).toEqual([
      'OWNER_ORIGINS: entry 1 of 1 ("https://shop.example.com") must be owner=origin[,origin...]; separate owners with spaces, an owner\'s origins with commas (no spaces), e.g. shop=https://shop.example.com,https://www.shop.example.com rival=https://rival.example.org',
    ]);
    // A space after a comma leaves an empty origin (and starts another entry).
    expect(problemsOf({ OWNER_ORIGINS: 'shop=https://a.example, https://b.example' })).toEqual([
      "OWNER_ORIGINS: entry 1 of 2 has an empty origin: separate an owner's origins with single commas (no spaces), with nothing after the last",
    ]);
    expect(problemsOf({ OWNER_ORIGINS: 'Shop=https://shop.example.com' })).toEqual([
      'OWNER_ORIGINS: entry 1 of 1: owner must be 1-63 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit',
    ]);
    expect(problemsOf({ OWNER_ORIGINS: 'shop=' })).toHaveLength(1);
    expect(
      problemsOf({ OWNER_ORIGINS: 'shop=https://a.example rival=https://b.example shop=https://c.example' }),
    ).toEqual(['OWNER_ORIGINS: entry 3 of 3: owner shop is listed twice: list its origins once']);
    for (const origin of [
      'https://shop.example.com/',
      'https://shop.example.com/cart',
      'shop.example.com',
      'ftp://shop.example.com',
      'https://user:pw@shop.example.com',
      'https://shop.example.com?x=1',
      'https://',
      'https://shop.example.com\\evil',
    ]) {
      const problems = problemsOf({ OWNER_ORIGINS: `shop=https://ok.example,${origin}` });
      expect(problems, origin).toHaveLength(1);
      expect(problems[0], origin).toMatch(
        /^OWNER_ORIGINS: entry 1 of 1: ".*" is not an origin: give a scheme, host and port only, such as https:\/\/shop\.example\.com$/,
      );
    }
    // Reported with the other problems of the same start.
    expect(problemsOf({ OWNER_ORIGINS: 'shop', CORS_ORIGINS: 'nope' })).toHaveLength(2);
  });
});

describe('CORS_ORIGINS', () => {
  it('takes the scheme and host in any case (RFC 3986 3.1, 3.2.2): they name the origin a browser writes', () => {
    expect(problemsOf({ CORS_ORIGINS: 'HTTPS://Shop.Example.com' })).toEqual([]);
    expect(problemsOf({ CORS_ORIGINS: 'https://shop.example.com, Http://LOCALHOST:8080' })).toEqual([]);
    // Still origins only, in any case.
    for (const value of ['FTP://shop.example.com', 'HTTPS:shop.example.com']) {
      expect(problemsOf({ CORS_ORIGINS: value }), value).toEqual([
        'CORS_ORIGINS: must be a comma-separated list of origins such as https://shop.example.com',
      ]);
    }
  });

  it('refuses what is no origin though it looks like one, naming it, as OWNER_ORIGINS does', () => {
    // A user name (cut off by the URL parser: the origin allowed would be another than the one written), a port
    // that is no number (kept as written, it matched no browser's Origin), a query, a fragment.
    for (const value of [
      'https://user@shop.example.com',
      'https://user:pass@shop.example.com',
      'https://shop.example.com:port',
      'https://shop.example.com?x=1',
      'https://shop.example.com#top',
      'https://shop.example.com,https://a:b',
      // A path, named like the rest (the list's pattern refused it without saying which origin), and a backslash,
      // which the URL parser reads as "/": https://shop.example.com\evil was allowed as https://shop.example.com.
      'HTTPS://shop.example.com/cart',
      'https://ok.example,https://shop.example.com/',
      'https://shop.example.com\\evil',
      'https://shop.example.com\\',
    ]) {
      const problems = problemsOf({ CORS_ORIGINS: value });
      expect(problems, value).toHaveLength(1);
      expect(problems[0], value).toMatch(
        /^CORS_ORIGINS: .* is not an origin: give a scheme, host and port only/,
      );
    }
  });

  it('names the origin with a path, and which of the list it is', () => {
    expect(problemsOf({ CORS_ORIGINS: 'https://ok.example, https://shop.example.com/checkout' })).toEqual([
      'CORS_ORIGINS: origin 2 of 2: "https://shop.example.com/checkout" is not an origin: give a scheme, host and port only, such as https://shop.example.com',
    ]);
  });

  it('is kept as browsers write origins: lower-case, no default port, each once', () => {
    expect(
      auth({ CORS_ORIGINS: 'HTTPS://Shop.Example.com:443, http://localhost:80,https://shop.example.com' })
        .corsOrigins,
    ).toEqual(['https://shop.example.com', 'http://localhost']);
  });
});
