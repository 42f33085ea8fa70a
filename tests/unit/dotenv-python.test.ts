/**
 * The `.env` file is read as python-dotenv (the Python service's loader, `load_dotenv()`) read it, so a file written
 * for that service gives this one the same values.
 *
 * The tables are python-dotenv's own: tests/test_parser.py (`test_parse_stream`) and tests/test_main.py
 * (`test_dotenv_values_string_io`, `test_dotenv_values_empty_value_with_inline_comment`, `test_set_key_round_trips`,
 * the `test_load_dotenv_*` cases), https://github.com/theskumar/python-dotenv, as of 1.2.4. The expected values were
 * also checked against python-dotenv 1.2.2 run on the same input, except where 1.2.3/1.2.4 changed them (marked).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  applyDotenv,
  DotenvError,
  dotenvValues,
  loadDotenvFile,
  parseDotenv,
} from '../../src/config/dotenv.js';

type Row = { key: string | null; value: string | null; line: number; error: boolean };
const b = (key: string | null, value: string | null, line = 1, error = false): Row => ({
  key,
  value,
  line,
  error,
});
const comment = (line = 1) => b(null, null, line);
const invalid = (line = 1) => b(null, null, line, true);

describe('the parser (python-dotenv tests/test_parser.py, test_parse_stream)', () => {
  const cases: [string, Row[]][] = [
    ['', []],
    ['a=b', [b('a', 'b')]],
    ["'a'=b", [b('a', 'b')]],
    ['[=b', [b('[', 'b')]],
    [' a = b ', [b('a', 'b')]],
    ['export a=b', [b('a', 'b')]],
    [" export 'a'=b", [b('a', 'b')]],
    ['# a=b', [comment()]],
    ['a=b#c', [b('a', 'b#c')]],
    ['a=b #c', [b('a', 'b')]],
    // 1.2.4 (#663): an unquoted value that is only a comment is empty; 1.2.2 gave "#c" and "# comment".
    ['a= #c', [b('a', '')]],
    ['a=  # comment', [b('a', '')]],
    ['a=#b', [b('a', '#b')]],
    ['a=b\t#c', [b('a', 'b')]],
    ['a=b c', [b('a', 'b c')]],
    ['a=b\tc', [b('a', 'b\tc')]],
    ['a=b  c', [b('a', 'b  c')]],
    ['a=b\u00a0 c', [b('a', 'b\u00a0 c')]],
    ['a=b c ', [b('a', 'b c')]],
    ["a='b c '", [b('a', 'b c ')]],
    ['a="b c "', [b('a', 'b c ')]],
    ['export export_a=1', [b('export_a', '1')]],
    ['export port=8000', [b('port', '8000')]],
    ['a="b\nc"', [b('a', 'b\nc')]],
    ["a='b\nc'", [b('a', 'b\nc')]],
    ['a="b\\nc"', [b('a', 'b\nc')]],
    ["a='b\\nc'", [b('a', 'b\\nc')]],
    ['a="b\\"c"', [b('a', 'b"c')]],
    ["a='b\\'c'", [b('a', "b'c")]],
    ['a=à', [b('a', 'à')]],
    ['a="à"', [b('a', 'à')]],
    ['no_value_var', [b('no_value_var', null)]],
    ['a: b', [invalid()]],
    ['a=b\nc=d', [b('a', 'b'), b('c', 'd', 2)]],
    ['a=b\rc=d', [b('a', 'b'), b('c', 'd', 2)]],
    ['a=b\r\nc=d', [b('a', 'b'), b('c', 'd', 2)]],
    ['a=\nb=c', [b('a', ''), b('b', 'c', 2)]],
    ['\n\n', [comment()]],
    ['a=b\n\n', [b('a', 'b'), comment(2)]],
    ['a=b\n\nc=d', [b('a', 'b'), b('c', 'd', 2)]],
    ['a="\nb=c', [invalid(), b('b', 'c', 2)]],
    ['# comment\na="b\nc"\nd=e\n', [comment(), b('a', 'b\nc', 2), b('d', 'e', 4)]],
    ['a=b\n# comment 1', [b('a', 'b'), comment(2)]],
    ['# comment 1\n# comment 2', [comment(), comment(2)]],
    ['uglyKey[%$="S3cr3t_P4ssw#rD" #\na=b', [b('uglyKey[%$', 'S3cr3t_P4ssw#rD'), b('a', 'b', 2)]],
    // 1.2.3 (#640): a UTF-8 byte order mark before the first key is not part of it.
    ['\ufeffa=b', [b('a', 'b')]],
    ['\ufeffa=b\nc=d', [b('a', 'b'), b('c', 'd', 2)]],
  ];
  it.each(cases)('%j', (input, expected) => {
    expect(parseDotenv(input)).toEqual(expected);
  });

  // Not in test_parser.py, but what its regular expressions do; each checked against python-dotenv 1.2.2.
  const more: [string, Row[]][] = [
    // Double-quoted escapes: \\ \' \" \a \b \f \n \r \t \v; any other backslash stays.
    ['a="x\\\\y\\\'z\\a\\b\\f\\r\\t\\v\\d\\$"', [b('a', "x\\y'z\x07\b\f\r\t\v\\d\\$")]],
    // Single-quoted: only \\ and \'.
    ["a='x\\\\y\\n\\\"'", [b('a', 'x\\y\\n\\"')]],
    // Unquoted: no escapes at all.
    ['a=x\\ny\\"', [b('a', 'x\\ny\\"')]],
    // A quoted value's trailing comment, and text after the closing quote, which makes the line invalid.
    ['a="b" # c\nd=e', [b('a', 'b'), b('d', 'e', 2)]],
    ['a="b"#c', [b('a', 'b')]],
    ['a="b"c\nd=e', [invalid(), b('d', 'e', 2)]],
    ["a='b'  \nd=e", [b('a', 'b'), b('d', 'e', 2)]],
    // Spaces and tabs around the key and the equal sign; `export` needs whitespace after it.
    ['\t export \t a \t = \t b \t ', [b('a', 'b')]],
    ['exporta=b', [b('exporta', 'b')]],
    ['export=b', [b('export', 'b')]],
    // A key alone, with trailing spaces or a comment after it.
    ['a  # no value\nb=c', [b('a', null), b('b', 'c', 2)]],
    // A key with characters a shell would refuse.
    ['a.b-c/d=e', [b('a.b-c/d', 'e')]],
    // The first `=` ends the key; the value keeps the others.
    ['a==b=c', [b('a', '=b=c')]],
    // An unterminated quote is an invalid line, and the next line is read again.
    ["a='b\nc=d", [invalid(), b('c', 'd', 2)]],
    // Whitespace Python's \s knows (U+001C..U+001F, U+0085) separates a comment; U+FEFF inside a line does not.
    ['a=b\x1f#c', [b('a', 'b')]],
    ['a=b\x85#c', [b('a', 'b')]],
    ['a=b\ufeff#c', [b('a', 'b\ufeff#c')]],
  ];
  it.each(more)('%j', (input, expected) => {
    expect(parseDotenv(input)).toEqual(expected);
  });

  // 1.2.3 (#680): in a quoted value a backslash escapes the next character, so an escaped backslash before the
  // closing quote ends the value there (1.2.2 took `\'` for an escaped quote and lost the next line too).
  it.each([
    ["a='C:\\\\Users\\\\'\nb='sentinel'", 'C:\\Users\\'],
    ["a='back\\\\'\nb='sentinel'", 'back\\'],
    ["a='a\\\\\\'b'\nb='sentinel'", "a\\'b"],
    ["a='it\\'s'\nb='sentinel'", "it's"],
    ['a="back\\\\"\nb=\'sentinel\'', 'back\\'],
  ])('%j (test_set_key_round_trips)', (input, a) => {
    expect(parseDotenv(input)).toEqual([b('a', a), b('b', 'sentinel', 2)]);
  });
});

describe('dotenv_values (python-dotenv tests/test_main.py)', () => {
  // test_dotenv_values_string_io: environment, file, interpolate, expected.
  const cases: [Record<string, string>, string, boolean, Record<string, string | null>][] = [
    [{ b: 'c' }, 'a=$b', false, { a: '$b' }],
    [{ b: 'c' }, 'a=$b', true, { a: '$b' }],
    [{ b: 'c' }, 'a=${b}', false, { a: '${b}' }],
    [{ b: 'c' }, 'a=${b}', true, { a: 'c' }],
    [{ b: 'c' }, 'a=${b:-d}', false, { a: '${b:-d}' }],
    [{ b: 'c' }, 'a=${b:-d}', true, { a: 'c' }],
    [{}, 'b=c\na=${b}', true, { a: 'c', b: 'c' }],
    [{}, 'a=${b}', true, { a: '' }],
    [{}, 'a=${b:-d}', true, { a: 'd' }],
    [{ b: 'c' }, 'a="${b}"', true, { a: 'c' }],
    // Single-quoted values are interpolated too: python-dotenv expands after parsing, whatever the quotes.
    [{ b: 'c' }, "a='${b}'", true, { a: 'c' }],
    [{ b: 'c' }, 'a=x${b}y', true, { a: 'xcy' }],
    [{ a: 'b' }, 'a=${a}', true, { a: 'b' }],
    [{}, 'a=${a}', true, { a: '' }],
    [{ a: 'b' }, 'a=${a:-c}', true, { a: 'b' }],
    [{}, 'a=${a:-c}', true, { a: 'c' }],
    [{ b: 'c' }, 'a=${b}${b}', true, { a: 'cc' }],
    [{ b: 'c' }, 'b=d\na=${b}', true, { a: 'd', b: 'd' }],
    [{}, 'a=b\na=c\nd=${a}', true, { a: 'c', d: 'c' }],
    [{}, 'a=b\nc=${a}\nd=e\nc=${d}', true, { a: 'b', c: 'e', d: 'e' }],
    // Not in the table; checked against python-dotenv 1.2.2.
    // Only earlier lines count; a key without a value is there, as nothing, so its default is not used.
    [{}, 'a=${b}\nb=c', true, { a: '', b: 'c' }],
    [{}, 'b\na=${b:-d}', true, { a: '', b: null }],
    // An empty value in the environment is a value (unlike the shell's :-).
    [{ b: '' }, 'a=${b:-d}', true, { a: '' }],
    [{}, 'a=${b:-}x', true, { a: 'x' }],
    [{}, 'a=${b:-${c}}', true, { a: '${c}' }],
    [{}, 'a=${b:c}', true, { a: '${b:c}' }],
    [{}, 'a=${}', true, { a: '' }],
    [{ 'b-d': 'e' }, 'a=${b-d}', true, { a: 'e' }],
    [{}, 'a=${b', true, { a: '${b' }],
    [{}, 'a=b\nc="${a}\\n${a}"', true, { a: 'b', c: 'b\nb' }],
  ];
  it.each(cases)('environment %j, %j, interpolate %s', (environ, text, interpolate, expected) => {
    expect(dotenvValues(text, { environ, interpolate })).toEqual(expected);
  });

  // test_dotenv_values_empty_value_with_inline_comment (1.2.4, #663).
  it.each([
    ['KEY= # comment', { KEY: '' }],
    ['KEY=  # comment', { KEY: '' }],
    ['KEY=val # comment', { KEY: 'val' }],
    ['KEY=a#b', { KEY: 'a#b' }],
    ['KEY=#novalue', { KEY: '#novalue' }],
    ['KEY=# # comment', { KEY: '#' }],
    ['KEY=\t# comment', { KEY: '' }],
    ['KEY= # comment\nOTHER=val', { KEY: '', OTHER: 'val' }],
  ])('%j', (text, expected) => {
    expect(dotenvValues(text, { environ: {} })).toEqual(expected);
  });
});

describe('load_dotenv(): what reaches the environment', () => {
  // test_load_dotenv_existing_file, _existing_variable_no_override, _redefine_var_used_in_file_no_override.
  it('sets what the environment does not have, and keeps what it has', () => {
    const environ: Record<string, string> = {};
    applyDotenv('a=b', environ);
    expect(environ).toEqual({ a: 'b' });

    const kept: Record<string, string> = { a: 'c' };
    applyDotenv('a=b', kept);
    expect(kept).toEqual({ a: 'c' });
  });

  it("expands ${VAR} from the environment first, then from the file's earlier lines", () => {
    const environ: Record<string, string> = { a: 'c' };
    applyDotenv('a=b\nd="${a}"', environ);
    expect(environ).toEqual({ a: 'c', d: 'c' });

    const other: Record<string, string> = { HOST: 'broker.internal' };
    applyDotenv('HOST=localhost\nPORT=5672\nURL=amqp://${HOST}:${PORT}/${VHOST:-%2F}\nEMPTY=${UNSET}', other);
    expect(other).toEqual({
      HOST: 'broker.internal',
      PORT: '5672',
      URL: 'amqp://broker.internal:5672/%2F',
      EMPTY: '',
    });
  });

  it('ignores a key without a value, as load_dotenv does', () => {
    const environ: Record<string, string> = {};
    applyDotenv('FOO\nBAR=', environ);
    expect(environ).toEqual({ BAR: '' });
  });

  it('an empty value in the environment is kept over the file', () => {
    const environ: Record<string, string> = { a: '' };
    applyDotenv('a=b', environ);
    expect(environ).toEqual({ a: '' });
  });

  it("the Python service's variables, written as its users wrote them", () => {
    const environ: Record<string, string> = {};
    const result = applyDotenv(
      [
        '# Stripe',
        'export STRIPE_SECRET_KEY = sk_test_abc123   # test mode',
        "STRIPE_PUBLISHABLE_KEY='pk_test_abc#123'",
        'STRIPE_WEBHOOK_SECRET: whsec_abc',
        'RABBITMQ_HOST=${BROKER:-localhost}',
        'RABBITMQ_PORT=5672 # AMQP',
        'RABBITMQ_USER=guest#1',
        'RABBITMQ_PASSWORD=pa#ss',
        '',
      ].join('\n'),
      environ,
    );
    expect(environ).toEqual({
      STRIPE_SECRET_KEY: 'sk_test_abc123',
      STRIPE_PUBLISHABLE_KEY: 'pk_test_abc#123',
      RABBITMQ_HOST: 'localhost',
      RABBITMQ_PORT: '5672',
      RABBITMQ_USER: 'guest#1',
      RABBITMQ_PASSWORD: 'pa#ss',
    });
    // python-dotenv skips the line it cannot parse and warns with its number.
    expect(result.invalidLines).toEqual([4]);
  });

  it.each([
    ['RABBITMQ_PASSWORD=pa#ss', 'pa#ss'],
    ['RABBITMQ_PASSWORD=pa #ss', 'pa'],
    ['RABBITMQ_PASSWORD=pa#ss # the broker password', 'pa#ss'],
    ['RABBITMQ_PASSWORD="pa#ss" # the broker password', 'pa#ss'],
    ["RABBITMQ_PASSWORD='pa\"ss'", 'pa"ss'],
    ['RABBITMQ_PASSWORD="pa\\"ss\\\\"', 'pa"ss\\'],
    ['RABBITMQ_PASSWORD=pa$ss`x`', 'pa$ss`x`'],
    ['RABBITMQ_PASSWORD=${RABBIT_SECRET}', ''],
  ])('%j gives %j', (line, password) => {
    const environ: Record<string, string> = {};
    applyDotenv(line, environ);
    expect(environ.RABBITMQ_PASSWORD).toBe(password);
  });
});

describe('loadDotenvFile', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'dotenv-python-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads .env in the current directory, and nothing when there is none', () => {
    const environ: Record<string, string> = {};
    expect(loadDotenvFile({ cwd: dir, environ })).toMatchObject({ found: false, invalidLines: [] });
    expect(environ).toEqual({});

    writeFileSync(path.join(dir, '.env'), 'RABBITMQ_PASSWORD=pa#ss\n');
    expect(loadDotenvFile({ cwd: dir, environ })).toMatchObject({
      path: path.join(dir, '.env'),
      found: true,
    });
    expect(environ).toEqual({ RABBITMQ_PASSWORD: 'pa#ss' });
  });

  it('reads the file DOTENV_PATH (or DOTENV_CONFIG_PATH) names instead, as the dotenv package did', () => {
    writeFileSync(path.join(dir, '.env'), 'FROM=cwd\n');
    writeFileSync(path.join(dir, 'other.env'), 'FROM=other\n');
    const environ: Record<string, string> = { DOTENV_PATH: 'other.env' };
    loadDotenvFile({ cwd: dir, environ });
    expect(environ.FROM).toBe('other');

    const viaConfig: Record<string, string> = { DOTENV_CONFIG_PATH: path.join(dir, 'other.env') };
    loadDotenvFile({ cwd: dir, environ: viaConfig });
    expect(viaConfig.FROM).toBe('other');
  });

  it('reads a file saved with Windows line ends or a byte order mark as Python does', () => {
    writeFileSync(
      path.join(dir, '.env'),
      '\ufeffSTRIPE_SECRET_KEY=sk_test_1\r\nMULTI="a\r\nb"\r\nOLD_MAC=x\ry\r\n',
    );
    const environ: Record<string, string> = {};
    loadDotenvFile({ cwd: dir, environ });
    // Python opens the file in text mode: \r\n and \r are read as \n (so `y` is a key without a value).
    expect(environ).toEqual({ STRIPE_SECRET_KEY: 'sk_test_1', MULTI: 'a\nb', OLD_MAC: 'x' });
  });

  it('refuses a file that is not UTF-8, without quoting it', () => {
    writeFileSync(
      path.join(dir, '.env'),
      Buffer.concat([Buffer.from('RABBITMQ_PASSWORD=p'), Buffer.from([0xe9, 0x0a])]),
    );
    const environ: Record<string, string> = {};
    let error: unknown;
    try {
      loadDotenvFile({ cwd: dir, environ });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DotenvError);
    expect((error as Error).message).toContain(path.join(dir, '.env'));
    expect((error as Error).message).toContain('UTF-8');
    expect((error as Error).message).not.toContain('RABBITMQ_PASSWORD=p');
    expect(environ).toEqual({});
  });
});
