/**
 * DNS rebinding. A server that listens on a loopback address only cannot be reached from the network, but a web
 * page the developer opens can still reach it: the page's own name (evil.example) first resolves to the
 * attacker's server, then to 127.0.0.1, and the browser takes every later request of the page to
 * http://evil.example:5000 as same-origin, so the page calls the server and reads its answers (CORS does not
 * apply). The browser always names the page's host in `Host`, which a page cannot set, so such a server answers
 * only requests that name a loopback host: `localhost`, `*.localhost` (RFC 6761: never resolved by DNS),
 * `127.x.x.x` and `[::1]`, with any port, the name it was told to listen on, and the service's ALLOWED_HOSTS.
 *
 * Plain functions, shared by the service (src/http/app.ts, ops-app.ts) and the Stripe sandbox (src/sandbox).
 */
import { isIPv4 } from 'node:net';

/**
 * `Host` naming a loopback host, port optional. Each label of a `*.localhost` name is one run of characters
 * without a dot, so the match is linear in the header's length.
 */
const LOOPBACK_HOST =
  /^(?:(?:[a-z0-9_-]+\.)*localhost\.?|127(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}|\[::1\])(?::\d{0,5})?$/i;

/** True when `address`, a listen address (HOST) or a bound one, is on a loopback interface only. */
export function isLoopbackAddress(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (a === 'localhost' || a.endsWith('.localhost')) return true;
  if (a === '::1' || a === '0:0:0:0:0:0:0:1') return true;
  const v4 = a.startsWith('::ffff:') ? a.slice('::ffff:'.length) : a;
  return isIPv4(v4) && v4.startsWith('127.');
}

/**
 * Whether a server listening only on loopback answers a request whose `Host` header is `host`. A request without
 * `Host` (HTTP/1.0; Node refuses an HTTP/1.1 request without one) does not come from a browser and is answered.
 * `alsoAllowed`: a name the server was configured under (its HOST, or the sandbox's public URL), lower case.
 */
export function isLoopbackHost(host: string | undefined, alsoAllowed?: string): boolean {
  if (host === undefined || LOOPBACK_HOST.test(host)) return true;
  if (alsoAllowed === undefined) return false;
  const h = host.toLowerCase();
  return h === alsoAllowed || (h.startsWith(alsoAllowed) && /^:\d{0,5}$/.test(h.slice(alsoAllowed.length)));
}

/**
 * The host name (not an address) a server was told to listen on or is reached under, in lower case: requests
 * naming it are answered too (HOST=shop.test with shop.test mapped to 127.0.0.1 in /etc/hosts). Whoever can make
 * that name resolve elsewhere controls it already.
 */
export function configuredHostName(host: string | undefined): string | undefined {
  if (host === undefined || host === '' || host.includes(':') || isIPv4(host)) return undefined;
  return host.toLowerCase().replace(/\.$/, '');
}

/**
 * What the refusal says, for the API's problem+json and the sandbox's Stripe-style error alike. `allowedVariable`:
 * the setting that names more hosts (the service's ALLOWED_HOSTS; the sandbox has none).
 */
export function misdirectedDetail(
  host: string,
  listening: string,
  hostVariable: string,
  allowedVariable?: string,
): string {
  const proxy = allowedVariable
    ? `have it send one of them as Host, or list its name in ${allowedVariable}`
    : 'have it send one of them as Host';
  return (
    `This server listens on ${listening} only, so it answers requests for localhost, *.localhost, 127.0.0.1 or ` +
    `[::1], not for "${host.slice(0, 100)}" (a web page reaching it under another name is a DNS rebinding ` +
    `attack). Use one of those names; behind a proxy or a tunnel, ${proxy}; or listen on another address with ` +
    `${hostVariable}.`
  );
}

/**
 * ALLOWED_HOSTS: more names a server on loopback answers, for a tunnel (ngrok, cloudflared) or a reverse proxy on
 * the same machine that passes the public name in `Host`. Listing a name trusts whoever controls its DNS, as HOST's
 * name does: only they can make it resolve to 127.0.0.1. Each entry is a host name (an exact match, any port), or
 * `*.` and a domain of two labels or more: any name under that domain, not the domain itself. `*` alone, which
 * would undo the check, and `*.com`, which would answer any attacker's .com name, are refused, as are URLs, paths
 * and ports, which name no host a `Host` header could be compared with.
 */
const HOST_NAME = /^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*$/;

/** The entries of ALLOWED_HOSTS, trimmed and in lower case without a final dot; throws saying which is wrong. */
export function parseAllowedHosts(value: string): string[] {
  const items = value.split(',');
  return items.map((raw, i) => {
    const item = raw.trim().toLowerCase();
    const which = `item ${i + 1} of ${items.length}`;
    const quoted = `${which} ("${item.slice(0, 100)}")`;
    if (item === '') {
      throw new Error(
        `${which} is empty: separate host names with single commas, with nothing after the last`,
      );
    }
    if (item === '*') {
      throw new Error(
        `${which} is "*", which would answer every name and undo the check against DNS rebinding: list each host ` +
          'name, or *.domain for its subdomains',
      );
    }
    const url = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/.exec(item);
    if (url) {
      const host = url[1]!.replace(/^[^@]*@/, '').replace(/:\d*$/, '');
      throw new Error(`${quoted} is a URL: give its host name alone (${host.slice(0, 100)})`);
    }
    if (/[/?#]/.test(item)) {
      throw new Error(
        `${quoted} has a path: give the host name alone (${item.split(/[/?#]/)[0]!.slice(0, 100)})`,
      );
    }
    if (/^[^:]+:\d*$/.test(item)) {
      throw new Error(`${quoted} has a port: give the host name alone (any port is answered)`);
    }
    const name = item.replace(/\.$/, '');
    const wildcard = name.startsWith('*.');
    const domain = wildcard ? name.slice(2) : name;
    if (!HOST_NAME.test(domain)) {
      throw new Error(`${quoted} is not a host name such as tunnel.example or *.tunnel.example`);
    }
    if (wildcard && !domain.includes('.')) {
      throw new Error(
        `${quoted} would answer every name under a top-level domain: a *. entry needs a domain of two labels or ` +
          'more (*.tunnel.example)',
      );
    }
    return name;
  });
}

/**
 * Whether `host`, a request's `Host`, names one of `allowed` (parseAllowedHosts's entries): the name in any case,
 * with an optional port and final dot as for loopback names. A request without `Host` is not matched here (the
 * loopback check answers it).
 */
export function allowedHostMatcher(allowed: readonly string[]): (host: string | undefined) => boolean {
  const exact = new Set(allowed.filter((a) => !a.startsWith('*.')));
  const domains = allowed.filter((a) => a.startsWith('*.')).map((a) => a.slice(1));
  if (exact.size === 0 && domains.length === 0) return () => false;
  return (host) => {
    if (host === undefined) return false;
    const m = /^([^:]*?)\.?(?::\d{0,5})?$/.exec(host.toLowerCase());
    if (!m) return false;
    const name = m[1]!;
    if (exact.has(name)) return true;
    // The labels before the domain are checked too: "evil.example/.tunnel.example" names no host under it.
    return domains.some(
      (d) => name.length > d.length && name.endsWith(d) && HOST_NAME.test(name.slice(0, -d.length)),
    );
  };
}
