/**
 * JSON can spell a lone UTF-16 surrogate (`"\ud800"`): valid JSON syntax, and it passes every schema, but
 * it is not Unicode text. Nothing downstream can carry it (the Stripe SDK's form encoder throws a URIError
 * on it, which would answer 502, and a refund would be reserved and retried for nothing), so it is the
 * caller's mistake and answered 400. In a UTF-8 body only a `\u` escape can make one (bytes that are not UTF-8
 * decode to U+FFFD), so only such bodies that hold an escape are walked, and only after the contract has accepted
 * them. A body in another charset body-parser takes (`charset=utf-16le`, `utf-7`: any `utf-*`) is always walked:
 * its bytes decode to a lone surrogate without any escape (UTF-16LE `00 D8`, UTF-7 `+2AA-`), and such a body got
 * past the check to the SDK (502 upstream_error, or a refund accepted that the worker could never send).
 */
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import { ProblemError } from './problem.js';

const HAS_ESCAPE = Symbol('body.hasUnicodeEscape');
const LONE_SURROGATE = /\p{Cs}/u;

type Noted = IncomingMessage & { [HAS_ESCAPE]?: boolean };

/**
 * body-parser's `verify` hook: remembers whether the JSON may hold a lone surrogate: its raw bytes hold a `\u`
 * escape, or they are decoded from another charset than UTF-8 (`encoding`, the Content-Type's charset, lower case).
 */
export function noteUnicodeEscapes(
  req: IncomingMessage,
  _res: unknown,
  buf: Buffer,
  encoding?: string | null,
): void {
  if ((typeof encoding === 'string' && encoding !== 'utf-8') || buf.includes('\\u'))
    (req as Noted)[HAS_ESCAPE] = true;
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
