/**
 * DNS rebinding. A server that listens on a loopback address only cannot be reached from the network, but a web
 * page the developer opens can still reach it: the page's own name (evil.example) first resolves to the
 * attacker's server, then to 127.0.0.1, and the browser takes every later request of the page to
 * http://evil.example:5000 as same-origin, so the page calls the server and reads its answers (CORS does not
 * apply). The browser always names the page's host in `Host`, which a page cannot set, so such a server answers
 * only requests that name a loopback host: `localhost`, `*.localhost` (RFC 6761: never resolved by DNS),
 * `127.x.x.x` and `[::1]`, with any port, and the name it was told to listen on.
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

/** What the refusal says, for the API's problem+json and the sandbox's Stripe-style error alike. */
export function misdirectedDetail(host: string, listening: string, hostVariable: string): string {
  return (
    `This server listens on ${listening} only, so it answers requests for localhost, *.localhost, 127.0.0.1 or ` +
    `[::1], not for "${host.slice(0, 100)}" (a web page reaching it under another name is a DNS rebinding ` +
    'attack). Use one of those names; behind a proxy or a tunnel, have it send one of them as Host; or listen ' +
    `on another address with ${hostVariable}.`
  );
}
