/**
 * The logger's last line of defence: whatever a message or an error carries, secrets shaped like these never
 * reach the written line.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { explainStartFailure } from '../../src/config/start-failure.js';
import { createLogger, errorForStderr, scrubSecrets } from '../../src/logger.js';
import { StoreUnavailableError } from '../../src/store/errors.js';

describe('scrubSecrets', () => {
  it.each([
    [
      'postgres://payments:s3cr%40t@db.internal:5432/payments',
      's3cr%40t',
      'postgres://payments:[REDACTED]@db.internal',
    ],
    ['amqp://guest:guest@rabbitmq:5672', 'guest@', 'amqp://guest:[REDACTED]@rabbitmq'],
    ['amqps://svc:p4ss@mq.example.com/vhost', 'p4ss', 'amqps://svc:[REDACTED]@mq.example.com'],
    ['sk_test_51abcDEF', 'abcDEF', 'sk_test_[REDACTED]'],
    ['pi_123_secret_456xyz', '456xyz', 'pi_123_secret_[REDACTED]'],
    // A key glued to an id by an underscore (a key sent as a checkout session id).
    ['cs_test_sk_test_51abcDEF', 'abcDEF', 'cs_test_sk_test_[REDACTED]'],
    ['pi_psk_abcdefghijklmnopqrstuvwxyz', 'abcdefghij', 'pi_psk_[REDACTED]'],
    ['key_whsec_abcDEF123', 'abcDEF123', 'key_whsec_[REDACTED]'],
    ['.postgres://app:pw7@db', 'pw7', '.postgres://app:[REDACTED]@db'],
    ['url=redis+tls://app:pw8@cache', 'pw8', 'url=redis+tls://app:[REDACTED]@cache'],
  ])('%s loses its secret', (input, secret, kept) => {
    const out = scrubSecrets(`connect failed: ${input} (retrying)`);
    expect(out).not.toContain(secret);
    expect(out).toContain(kept);
  });

  it('leaves URLs without a password, and ordinary text, as they are', () => {
    for (const line of [
      'http://127.0.0.1:5000/refund-status/abc',
      'postgres://payments@db:5432/payments',
      'https://user@example.com/path',
      'ratio 1:2 at 10:30@noon',
    ]) {
      expect(scrubSecrets(line)).toBe(line);
    }
  });

  it('applies to what the logger writes, message and error alike', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString('utf8'));
        cb();
      },
    });
    const logger = createLogger({ level: 'info' }, sink);
    logger.warn(
      { err: new Error('getaddrinfo ENOTFOUND postgres://app:hunter2@db') },
      'cannot reach amqp://u:pw9@mq',
    );
    const written = lines.join('');
    expect(written).not.toContain('hunter2');
    expect(written).not.toContain('pw9');
    expect(written).toContain('postgres://app:[REDACTED]@db');
  });

  it('a query value masked already keeps the text after it; any other is still redacted', () => {
    expect(scrubSecrets('(db?password=***): next')).toBe('(db?password=***): next');
    expect(scrubSecrets(scrubSecrets('(db?token=abc) next'))).toBe('(db?token=[REDACTED] next');
    for (const value of ['hunter2):', '***hunter2', '***)hunter2', '*', '****']) {
      const out = scrubSecrets(`(db?password=${value} next`);
      expect(out, value).toBe('(db?password=[REDACTED] next');
    }
  });

  it('a start refused for a DATABASE_URL with ?password= reads as written, the password masked once', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString('utf8'));
        cb();
      },
    });
    const logger = createLogger({ level: 'info' }, sink);
    for (const url of [
      'postgres://app@db.internal/payments?password=pgQueryPw1',
      'postgres://app:pgUserPw2@db.internal/payments?sslmode=require&sslpassword=pgSslPw3',
      'postgres://app@db.internal/payments?token=pgTokenPw4',
    ]) {
      const advice = explainStartFailure(new StoreUnavailableError('connect ECONNREFUSED 10.0.0.7:5432'), {
        port: 5000,
        database: { url },
      });
      // As src/main.ts writes it.
      logger.fatal(`could not start: ${advice}; exiting`);
    }
    const messages = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(messages.join('\n')).not.toMatch(/pgQueryPw1|pgUserPw2|pgSslPw3|pgTokenPw4/);
    const advice =
      ': PostgreSQL must be running and reachable there, and its user, password and database must exist; exiting';
    expect(messages).toEqual([
      `could not start: connect ECONNREFUSED 10.0.0.7:5432. Check DATABASE_URL (postgres://app@db.internal/payments?password=***)${advice}`,
      `could not start: connect ECONNREFUSED 10.0.0.7:5432. Check DATABASE_URL (postgres://app:***@db.internal/payments?sslmode=require&sslpassword=***)${advice}`,
      `could not start: connect ECONNREFUSED 10.0.0.7:5432. Check DATABASE_URL (postgres://app@db.internal/payments?token=***)${advice}`,
    ]);
  });
});

/**
 * What an entry point's last-resort catch prints on stderr (src/main.ts, the sandbox CLI), where no logger is left
 * to filter it. No start found reaches src/main.ts's catch with a secret (the configuration's refusals print through
 * the filter already), so the function is tested here; the sandbox CLI's is tested by running it.
 */
describe('errorForStderr', () => {
  it('prints an error as console.error would, without the secrets in its message, stack, properties or cause', () => {
    const cause = new Error('auth failed for amqp://svc:mqPassw0rd@mq:5672');
    const err = Object.assign(new Error('start failed with sk_test_51mainCatchKey', { cause }), {
      url: 'postgres://app:pgPassw0rd@db/payments',
    });
    const out = errorForStderr(err);
    expect(out).toContain('Error: start failed with sk_test_[REDACTED]');
    expect(out).toContain('postgres://app:[REDACTED]@db/payments');
    expect(out).toContain('amqp://svc:[REDACTED]@mq:5672');
    expect(out).toMatch(/\n\s+at /); // the stack, as console.error(err) showed it
    expect(out).not.toMatch(/mainCatchKey|pgPassw0rd|mqPassw0rd/);
  });

  it('prints only the message when asked, and anything thrown that is not an Error', () => {
    const err = new TypeError('SANDBOX_PORT must be an integer, got "sk_test_51cliKey"');
    expect(errorForStderr(err, { messageOnly: true })).toBe(
      'SANDBOX_PORT must be an integer, got "sk_test_[REDACTED]"',
    );
    expect(errorForStderr('whsec_thrownAsString')).toBe('whsec_[REDACTED]');
    expect(errorForStderr({ key: 'rk_live_thrownInAnObject' })).toBe("{ key: 'rk_live_[REDACTED]' }");
  });
});
