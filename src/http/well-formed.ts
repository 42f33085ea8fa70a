/**
 * JSON can spell a lone UTF-16 surrogate (`"\ud800"`): valid JSON syntax, and it passes every schema, but
 * it is not Unicode text. Nothing downstream can carry it (the Stripe SDK's form encoder throws a URIError
 * on it, which would answer 502, and a refund would be reserved and retried for nothing), so it is the
 * caller's mistake and answered 400. Only a `\u` escape can make one (bytes that are not UTF-8 decode to
 * U+FFFD), so only bodies that hold an escape are walked, and only after the contract has accepted them.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import { ProblemError } from './problem.js';

const HAS_ESCAPE = Symbol('body.hasUnicodeEscape');
const LONE_SURROGATE = /\p{Cs}/u;

type Noted = IncomingMessage & { [HAS_ESCAPE]?: boolean };

/** body-parser's `verify` hook: remembers whether the raw JSON holds a `\u` escape. */
export function noteUnicodeEscapes(req: IncomingMessage, _res: unknown, buf: Buffer): void {
  if (buf.includes('\\u')) (req as Noted)[HAS_ESCAPE] = true;
}

const pointerToken = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

/** JSON pointer (under `at`) of the first string or key holding a lone surrogate, or null. */
function findLoneSurrogate(value: unknown, at: string): string | null {
  if (typeof value === 'string') return LONE_SURROGATE.test(value) ? at : null;
  if (value === null || typeof value !== 'object') return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findLoneSurrogate(value[i], `${at}/${i}`);
      if (found !== null) return found;
    }
    return null;
  }
  for (const [key, v] of Object.entries(value)) {
    const path = `${at}/${pointerToken(key)}`;
    if (LONE_SURROGATE.test(key)) return path;
    const found = findLoneSurrogate(v, path);
    if (found !== null) return found;
  }
  return null;
}

export const refuseLoneSurrogates: RequestHandler = (req, _res, next) => {
  if (!(req as Noted)[HAS_ESCAPE]) {
    next();
    return;
  }
  const path = findLoneSurrogate(req.body, '/body');
  if (path === null) {
    next();
    return;
  }
  const message = 'must be valid Unicode (it holds an unpaired UTF-16 surrogate escape)';
  next(
    new ProblemError(400, `${path.slice(1)} ${message}`, {
      code: 'invalid_unicode',
      errors: [{ path, message }],
    }),
  );
};
