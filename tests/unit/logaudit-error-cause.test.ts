/**
 * An error that is its own cause (or a cause's): the logger's error serializer followed the causes until the stack
 * overflowed, so logging the error threw. In main's handler of uncaught exceptions that throw left Node to print the
 * error itself, every field of it and unfiltered, secrets included.
 */
import { Writable } from 'node:stream';
import { expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';

it('logs an error whose causes go round in a circle, redacted, without throwing', () => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  const logger = createLogger({ level: 'info' }, sink);
  const err = new Error('settlement state lost (with sk_live_CrashSecret42)');
  const wrapper = new Error('refund worker stopped', { cause: err });
  err.cause = wrapper;

  expect(() => logger.fatal({ err: wrapper }, 'uncaught exception; exiting')).not.toThrow();
  const written = lines.join('');
  expect(written).not.toContain('CrashSecret42');
  const line = JSON.parse(written) as { msg: string; err: { message: string; cause: { message: string } } };
  expect(line.msg).toBe('uncaught exception; exiting');
  expect(line.err.message).toBe('refund worker stopped');
  expect(line.err.cause.message).toBe('settlement state lost (with sk_live_[REDACTED])');
});
