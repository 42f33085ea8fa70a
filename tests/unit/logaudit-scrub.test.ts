/**
 * Secrets the logger's last-line filter let through: keys with underscores (the configuration takes them, and the
 * compose file's is one), the last characters of a key Stripe quotes when it refuses one, and any secret written
 * right after what the JSON line or a URL escapes (`\n`, `\t`, `%3D`, `%22`), where the letter before it made `\b`
 * fail. Checked on what the logger writes.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';

function written(log: (logger: ReturnType<typeof createLogger>) => void): string {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  log(createLogger({ level: 'info' }, sink));
  return lines.join('');
}

describe('the logger never writes', () => {
  it.each([
    [
      'a Stripe key with underscores',
      'sk_test_compose_fake_key_not_secret',
      '_fake_key_not_secret',
      'sk_test_[REDACTED]',
    ],
    ['a restricted key with underscores', 'rk_live_ab_CDEF_ghij', '_CDEF_ghij', 'rk_live_[REDACTED]'],
    [
      "the key's last characters Stripe quotes",
      'Invalid API Key provided: sk_test_****AIL9',
      'AIL9',
      'Invalid API Key provided: sk_test_[REDACTED]',
    ],
    ['a key after a newline', 'settings:\nsk_live_51NewlineSecret', 'NewlineSecret', 'sk_live_[REDACTED]'],
    [
      'an API key of the service after a tab',
      `key:\tpsk_${'T'.repeat(24)}TabSecret99`,
      'TabSecret99',
      'psk_[REDACTED]',
    ],
    [
      'a client secret in a percent-encoded return URL',
      'GET /x?return_url=https%3A%2F%2Fshop%2F%3Fpayment_intent_client_secret%3Dpi_3Ab_secret_EncodedSecret1',
      'EncodedSecret1',
      'pi_3Ab_secret_[REDACTED]',
    ],
    [
      'a key in percent-encoded quotes',
      'q=%22sk_live_QuotedSecret2%22',
      'QuotedSecret2',
      'sk_live_[REDACTED]',
    ],
    [
      'a webhook secret after an escaped control character',
      '\u001bwhsec_EscapedSecret3',
      'EscapedSecret3',
      'whsec_[REDACTED]',
    ],
  ])('%s', (_what, text, secret, kept) => {
    const out = written((logger) => {
      logger.warn(text);
      logger.warn({ err: new Error(text) }, 'failed');
      logger.warn({ detail: text }, 'detail');
    });
    expect(out).not.toContain(secret);
    // In the message, the error (its message and stack) and the field.
    expect(out.split(kept).length - 1).toBeGreaterThanOrEqual(3);
  });

  it.each([
    [
      'secrets a client put in a query string',
      'GET /refund-status/r1?password=hunter2&access_token=tok9Q&api_key=ak7Z&limit=5',
      ['hunter2', 'tok9Q', 'ak7Z'],
      '?password=[REDACTED]&access_token=[REDACTED]&api_key=[REDACTED]&limit=5',
    ],
    [
      "a connection URL's password given as a parameter",
      'connect failed: postgres://app@db:5432/pay?sslmode=require&sslpassword=pw8Q',
      ['pw8Q'],
      'postgres://app@db:5432/pay?sslmode=require&sslpassword=[REDACTED]',
    ],
  ])('%s', (_what, text, secrets, kept) => {
    const out = written((logger) => logger.info({ req: { url: text } }, text));
    for (const s of secrets) expect(out).not.toContain(s);
    expect(out.split(kept).length - 1).toBe(2);
  });

  it('keeps the line valid JSON when a redacted query value holds a quote (the JSON escape is redacted with it)', () => {
    // Node takes a `"` in a request target; the line escapes it `\"`. Cut before the quote, the escape's backslash
    // went with the value and the quote ended the string: the line no longer parsed, nor did anything read it.
    const url = '/refund-status/r1?token=ab"cdSecret9&limit=5';
    const out = written((logger) => logger.info({ req: { url } }, 'request completed'));
    expect(out).not.toContain('cdSecret9');
    const line = JSON.parse(out.trim()) as { req: { url: string } };
    expect(line.req.url).toBe('/refund-status/r1?token=[REDACTED]&limit=5');
  });

  it('leaves words that merely end like a key prefix as they are', () => {
    const text = 'task_live_count=3 disk_test_ok spi_1_secret_word /x?session_id=cs_1&key_count=2';
    const out = written((logger) => logger.info(text));
    expect(out).toContain(text);
  });
});
