/**
 * What a JSON answer needs (OWASP REST Security Cheat Sheet, "Security headers"): no caching of payment
 * data, no sniffing, no framing, HTTPS only, and a policy that lets the body run nothing if a browser
 * ever renders it. helmet's full browser policy (a dozen headers, ~0.7 KB on every answer) is for pages.
 */
export const API_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['Cache-Control', 'no-store'],
  ['Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'"],
  ['Strict-Transport-Security', 'max-age=31536000; includeSubDomains'],
  ['X-Content-Type-Options', 'nosniff'],
  ['X-Frame-Options', 'DENY'],
];
