/**
 * OWNER_ORIGINS: each owner's browser origins, for a service that holds several shops (owners). With CORS_ORIGINS
 * alone every owner's publishable key may send its checkout's customers back to any listed origin, so anyone who
 * reads one shop's key out of its pages can make a genuine checkout of that shop that hands its customers on to
 * another shop's site. Listed here, a publishable key's checkout returns only to its own owner's origins.
 */
import { validateOwner } from '../auth/api-keys.js';

/** Each owner's origins, as browsers send them in `Origin` (lower-case host, no default port). */
export type OwnerOrigins = ReadonlyMap<string, readonly string[]>;

const EXAMPLE = 'shop=https://shop.example.com,https://www.shop.example.com rival=https://rival.example.org';

/**
 * An origin as the URL standard serializes it (what a browser's `Origin` and a redirect URL's origin are); throws an
 * Error starting with `which` for anything else (a path, a user name, a port that is no number).
 */
export function parseOrigin(raw: string, which: string): string {
  if (raw === '') {
    throw new Error(
      `${which} has an empty origin: separate an owner's origins with single commas (no spaces), with nothing after the last`,
    );
  }
  const quoted = `"${raw.slice(0, 100)}"`;
  let url: URL | null = null;
  try {
    url = new URL(raw);
  } catch {
    // below
  }
  if (
    url === null ||
    !/^https?:$/.test(url.protocol) ||
    // A backslash too: the URL parser reads it as "/" (https://shop.example.com\evil is https://shop.example.com
    // with a path), so the origin allowed would not be the text written.
    !/^https?:\/\/[^\s/\\?#@]+$/i.test(raw) ||
    url.username !== '' ||
    url.password !== ''
  ) {
    throw new Error(
      `${which}: ${quoted} is not an origin: give a scheme, host and port only, such as https://shop.example.com`,
    );
  }
  return url.origin;
}

/**
 * Parses `owner=origin[,origin...]` entries separated by spaces or semicolons, e.g. `${EXAMPLE}`. Throws an Error
 * naming the entry at fault.
 */
export function parseOwnerOrigins(value: string): OwnerOrigins {
  const entries = value.split(/[\s;]+/).filter((e) => e !== '');
  const out = new Map<string, readonly string[]>();
  entries.forEach((entry, i) => {
    const which = `entry ${i + 1} of ${entries.length}`;
    const eq = entry.indexOf('=');
    if (eq <= 0 || eq === entry.length - 1) {
      throw new Error(
        `${which} ("${entry.slice(0, 100)}") must be owner=origin[,origin...]; separate owners with spaces, an owner's origins with commas (no spaces), e.g. ${EXAMPLE}`,
      );
    }
    let owner: string;
    try {
      owner = validateOwner(entry.slice(0, eq));
    } catch (err) {
      throw new Error(`${which}: ${(err as Error).message}`);
    }
    if (out.has(owner)) throw new Error(`${which}: owner ${owner} is listed twice: list its origins once`);
    const origins = entry
      .slice(eq + 1)
      .split(',')
      .map((raw) => parseOrigin(raw, which));
    out.set(owner, Object.freeze([...new Set(origins)]));
  });
  if (out.size === 0) throw new Error(`lists no owner; e.g. ${EXAMPLE}`);
  return out;
}
