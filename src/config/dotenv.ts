/**
 * `.env`, read as python-dotenv reads it: the Python service this one replaces called `load_dotenv()`, and its users
 * bring their files. The npm `dotenv` package parses differently (it ends an unquoted value at any `#`, so
 * `RABBITMQ_PASSWORD=pa#ss` gave `pa`; it expands no `${VAR}`; it decodes no `\"` or `\\`), which changed secrets
 * without a word.
 *
 * A port of python-dotenv 1.2.4 (https://github.com/theskumar/python-dotenv, BSD-3-Clause):
 * - {@link parseDotenv} is src/dotenv/parser.py (`parse_stream`), regular expression for regular expression, with
 *   1.2.3's quoted values (a backslash escapes the character after it, #680) and 1.2.4's empty value before an
 *   inline comment (#663);
 * - {@link resolveVariables} is src/dotenv/main.py `resolve_variables` with src/dotenv/variables.py
 *   (`${NAME}` and `${NAME:-default}` only, in every value whatever its quotes);
 * - {@link applyDotenv} is `load_dotenv(override=False, interpolate=True)`: the environment wins over the file, for
 *   the variables set and for the `${...}` they expand, and a key without `=` is left out;
 * - {@link loadDotenvFile} reads the file as Python's `open(path, encoding="utf-8")` does (universal newlines, strict
 *   UTF-8), and only a regular file or a FIFO (`_is_file_or_fifo`); none is no error.
 *
 * Values are never logged or put in an error message: they are secrets. Line numbers and the path are.
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';

/**
 * Python's `\s` in a str pattern (str.isspace). JavaScript's `\s` differs: it lacks U+001C..U+001F and U+0085 and
 * has U+FEFF.
 */
const WS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
/** Python's `[^\S\r\n]`: whitespace other than \r and \n. */
const HWS = '\\t\\v\\f\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

/** parser.py's `make_regex`, matched at the reader's position only (`regex.match(string, pos)`). */
const at = (source: string) => new RegExp(source, 'uy');

const NEWLINE = /\r\n|\n|\r/g;
const MULTILINE_WHITESPACE = at(`[${WS}]*`);
const WHITESPACE = at(`[${HWS}]*`);
const EXPORT = at(`(?:export[${HWS}]+)?`);
const SINGLE_QUOTED_KEY = at(`'([^']+)'`);
const UNQUOTED_KEY = at(`([^=#${WS}]+)`);
const EQUAL_SIGN = at(`(=[${HWS}]*)`);
const SINGLE_QUOTED_VALUE = at(`'((?:\\\\[^]|[^'\\\\])*)'`);
const DOUBLE_QUOTED_VALUE = at(`"((?:\\\\[^]|[^"\\\\])*)"`);
const UNQUOTED_VALUE = at(`([^\\r\\n]*)`);
const COMMENT = at(`(?:[${HWS}]*#[^\\r\\n]*)?`);
const END_OF_LINE = at(`[${HWS}]*(?:\\r\\n|\\n|\\r|$)`);
const REST_OF_LINE = at(`[^\\r\\n]*(?:\\r|\\n|\\r\\n)?`);
/** `re.sub(r"\s+#.*", "", part)`: Python's `.` is anything but \n. */
const INLINE_COMMENT = new RegExp(`[${WS}]+#[^\\n]*`, 'gu');
/** `str.rstrip()`. */
const TRAILING_WHITESPACE = new RegExp(`[${WS}]+$`, 'u');

/** `codecs.decode(match, "unicode-escape")` for the escapes parser.py decodes. */
const ESCAPES: Record<string, string> = {
  '\\\\': '\\',
  "\\'": "'",
  '\\"': '"',
  '\\a': '\x07',
  '\\b': '\b',
  '\\f': '\f',
  '\\n': '\n',
  '\\r': '\r',
  '\\t': '\t',
  '\\v': '\v',
};
const DOUBLE_QUOTE_ESCAPES = /\\[\\'"abfnrtv]/g;
const SINGLE_QUOTE_ESCAPES = /\\[\\']/g;
const decodeEscapes = (regex: RegExp, value: string) => value.replace(regex, (m) => ESCAPES[m]!);

/** variables.py's `_posix_variable`. */
const POSIX_VARIABLE = /\$\{([^}:]*)(?::-([^}]*))?\}/gu;

/** One statement of the file: parser.py's `Binding` (its `original` string left out, `line` kept). */
export interface DotenvBinding {
  /** null for a comment, a blank stretch, or a statement that could not be parsed. */
  key: string | null;
  /** null when the key has no `=` (`FOO` alone). */
  value: string | null;
  /** The line the statement starts on (with the blank lines before it), from 1. */
  line: number;
  /** Could not be parsed: skipped, and python-dotenv warns with its line. */
  error: boolean;
}

class ParseError extends Error {}

class Reader {
  private readonly text: string;
  chars = 0;
  line = 1;
  private markChars = 0;
  private markLine = 1;

  constructor(text: string) {
    this.text = text.startsWith('\ufeff') ? text.slice(1) : text;
  }

  hasNext(): boolean {
    return this.chars < this.text.length;
  }

  setMark(): void {
    this.markChars = this.chars;
    this.markLine = this.line;
  }

  markedLine(): number {
    return this.markLine;
  }

  peek(count: number): string {
    return this.text.slice(this.chars, this.chars + count);
  }

  readRegex(regex: RegExp): (string | undefined)[] {
    regex.lastIndex = this.chars;
    const match = regex.exec(this.text);
    if (match === null) throw new ParseError('read_regex: Pattern not found');
    this.chars += match[0].length;
    this.line += match[0].match(NEWLINE)?.length ?? 0;
    return match.slice(1);
  }

  readGroup(regex: RegExp): string {
    return this.readRegex(regex)[0] ?? '';
  }
}

function parseKey(reader: Reader): string | null {
  const char = reader.peek(1);
  if (char === '#') return null;
  return reader.readGroup(char === "'" ? SINGLE_QUOTED_KEY : UNQUOTED_KEY);
}

function parseUnquotedValue(reader: Reader, precededByWhitespace: boolean): string {
  const part = reader.readGroup(UNQUOTED_VALUE);
  // `KEY=  # comment` is empty: the whitespace before the `#` went with the equal sign (1.2.4).
  if (precededByWhitespace && part.startsWith('#')) return '';
  return part.replace(INLINE_COMMENT, '').replace(TRAILING_WHITESPACE, '');
}

function parseValue(reader: Reader, precededByWhitespace: boolean): string {
  const char = reader.peek(1);
  if (char === "'") return decodeEscapes(SINGLE_QUOTE_ESCAPES, reader.readGroup(SINGLE_QUOTED_VALUE));
  if (char === '"') return decodeEscapes(DOUBLE_QUOTE_ESCAPES, reader.readGroup(DOUBLE_QUOTED_VALUE));
  if (char === '' || char === '\n' || char === '\r') return '';
  return parseUnquotedValue(reader, precededByWhitespace);
}

function parseBinding(reader: Reader): DotenvBinding {
  reader.setMark();
  try {
    reader.readRegex(MULTILINE_WHITESPACE);
    if (!reader.hasNext()) return { key: null, value: null, line: reader.markedLine(), error: false };
    reader.readRegex(EXPORT);
    const key = parseKey(reader);
    reader.readRegex(WHITESPACE);
    let value: string | null = null;
    if (reader.peek(1) === '=') {
      const equalSign = reader.readGroup(EQUAL_SIGN);
      value = parseValue(reader, equalSign.length > 1);
    }
    reader.readRegex(COMMENT);
    reader.readRegex(END_OF_LINE);
    return { key, value, line: reader.markedLine(), error: false };
  } catch (err) {
    if (!(err instanceof ParseError)) throw err;
    reader.readRegex(REST_OF_LINE);
    return { key: null, value: null, line: reader.markedLine(), error: true };
  }
}

/** parser.py's `parse_stream`: every statement of `text`, in order. */
export function parseDotenv(text: string): DotenvBinding[] {
  const reader = new Reader(text);
  const bindings: DotenvBinding[] = [];
  while (reader.hasNext()) bindings.push(parseBinding(reader));
  return bindings;
}

export type Environ = Record<string, string | undefined>;

const inEnviron = (environ: Environ, name: string) =>
  Object.prototype.hasOwnProperty.call(environ, name) && environ[name] !== undefined;

/**
 * main.py's `resolve_variables`: each value's `${NAME}` / `${NAME:-default}` from the environment and the values of
 * earlier statements. With `override` false (load_dotenv's default) the environment comes first; with it true
 * (dotenv_values) the file does. A name either knows, even as a key without a value, is used without the default.
 */
export function resolveVariables(
  values: Iterable<readonly [string, string | null]>,
  environ: Environ,
  override: boolean,
): Map<string, string | null> {
  const resolved = new Map<string, string | null>();
  const lookup = (name: string, fallback: string): string => {
    if (override && resolved.has(name)) return resolved.get(name) ?? '';
    if (inEnviron(environ, name)) return environ[name]!;
    if (resolved.has(name)) return resolved.get(name) ?? '';
    return fallback;
  };
  for (const [name, value] of values) {
    resolved.set(
      name,
      value === null
        ? null
        : value.replace(POSIX_VARIABLE, (_m, variable: string, fallback: string | undefined) =>
            lookup(variable, fallback ?? ''),
          ),
    );
  }
  return resolved;
}

const pairsOf = (bindings: DotenvBinding[]) =>
  bindings.flatMap((b) => (b.key === null ? [] : [[b.key, b.value] as const]));

/** python-dotenv's `dotenv_values(stream=...)`: the file's values, expanded with the file first. */
export function dotenvValues(
  text: string,
  opts: { environ?: Environ; interpolate?: boolean } = {},
): Record<string, string | null> {
  const pairs = pairsOf(parseDotenv(text));
  const values =
    opts.interpolate === false ? new Map(pairs) : resolveVariables(pairs, opts.environ ?? process.env, true);
  return Object.fromEntries(values);
}

export interface DotenvApplied {
  /** The keys set in `environ` (the values are not given back: they may be secrets). */
  set: string[];
  /** The lines of statements that could not be parsed, skipped (python-dotenv warns about each). */
  invalidLines: number[];
}

/**
 * `load_dotenv(stream=..., override=False)`: sets in `environ` each value of `text` it does not have yet, `${...}`
 * expanded from `environ` first, then the file's earlier statements.
 */
export function applyDotenv(text: string, environ: Environ): DotenvApplied {
  const bindings = parseDotenv(text);
  const values = resolveVariables(pairsOf(bindings), environ, false);
  const set: string[] = [];
  for (const [key, value] of values) {
    if (inEnviron(environ, key) || value === null) continue;
    environ[key] = value;
    set.push(key);
  }
  return { set, invalidLines: bindings.filter((b) => b.error).map((b) => b.line) };
}

/** The file could not be read (it is there, but unreadable or not UTF-8). The message quotes no value. */
export class DotenvError extends Error {}

export interface DotenvLoad extends DotenvApplied {
  path: string;
  /** False when there is no file there (not an error: the environment alone configures). */
  found: boolean;
}

/**
 * Which file: `DOTENV_PATH` (or `DOTENV_CONFIG_PATH`) when set, as the dotenv package's `config()` read them (a
 * leading `~` is the home directory), else `.env` in the current directory.
 */
export function dotenvPathOf(environ: Environ, cwd: string): string {
  const named = environ['DOTENV_PATH'] ?? environ['DOTENV_CONFIG_PATH'];
  if (!named) return path.resolve(cwd, '.env');
  return path.resolve(cwd, named.startsWith('~') ? path.join(homedir(), named.slice(1)) : named);
}

const codeOf = (err: unknown) => (err as NodeJS.ErrnoException).code ?? (err as Error).message;

/** Reads the `.env` file ({@link dotenvPathOf}) into `environ` (process.env) as {@link applyDotenv} does. */
export function loadDotenvFile(opts: { environ?: Environ; cwd?: string } = {}): DotenvLoad {
  const environ = opts.environ ?? process.env;
  const file = dotenvPathOf(environ, opts.cwd ?? process.cwd());
  const none: DotenvLoad = { path: file, found: false, set: [], invalidLines: [] };
  let bytes: Buffer;
  try {
    const stat = statSync(file);
    if (!stat.isFile() && !stat.isFIFO()) return none;
    bytes = readFileSync(file);
  } catch (err) {
    const code = codeOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return none;
    throw new DotenvError(`${file}: could not be read (${code})`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new DotenvError(
      `${file}: is not UTF-8 text, which is how it is read (as python-dotenv read it); save it as UTF-8`,
    );
  }
  // Python reads a text file with universal newlines: \r\n and \r arrive as \n, in quoted values too.
  return { path: file, found: true, ...applyDotenv(text.replace(/\r\n?/g, '\n'), environ) };
}

/** {@link loadDotenvFile} for an entry point: a file that cannot be read is reported and the process exits. */
export function loadDotenvOrExit(exitCode = 78): DotenvLoad {
  try {
    return loadDotenvFile();
  } catch (err) {
    if (!(err instanceof DotenvError)) throw err;
    console.error(err.message);
    process.exit(exitCode);
  }
}

/** The warning for statements skipped (python-dotenv's "could not parse statement starting at line N"), or null. */
export function skippedStatementsWarning(load: DotenvLoad): string | null {
  if (load.invalidLines.length === 0) return null;
  const lines = load.invalidLines.join(', ');
  return `${load.path}: could not parse the statement${load.invalidLines.length === 1 ? '' : 's'} starting at line ${lines}; skipped (python-dotenv skips them too)`;
}
