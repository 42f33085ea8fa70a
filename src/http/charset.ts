/**
 * `charset=utf8` (no hyphen) is a common spelling of UTF-8, and one the WHATWG Encoding standard lists as a label of
 * UTF-8, but body-parser takes only `utf-*` names for a JSON body (RFC 8259, 8.1), and answered such a request 415
 * although its body was plain UTF-8. The Content-Type is given the `utf-8` spelling before body-parser reads it
 * (and so for the validator after it), in any letter case and quoted as well. Any other charset
 * is left as it was, for body-parser to take (`utf-*`) or refuse (415).
 */
import type { IncomingMessage } from 'node:http';

// The charset parameter as content-type (body-parser's parser) reads one: optional whitespace around `=`, a token
// or a quoted string, up to the next `;` or the end.
const UTF8_CHARSET = /(;[ \t]*charset[ \t]*=[ \t]*)(?:utf8|"utf8")(?=[ \t]*(?:;|$))/i;

export function spellUtf8Charset(req: IncomingMessage): void {
  const type = req.headers['content-type'];
  if (type !== undefined && UTF8_CHARSET.test(type))
    req.headers['content-type'] = type.replace(UTF8_CHARSET, '$1utf-8');
}
