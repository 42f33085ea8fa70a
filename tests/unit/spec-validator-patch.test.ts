/**
 * src/http/validator-tuning.ts (loaded with the app) replaces express-openapi-validator's
 * OpenAPISchemaValidator so that it compiles the OpenAPI meta-schema only when the contract is actually
 * checked (validateApiSpec=true), and keeps the route patterns the validator compiles on every request.
 * Both must keep the library's meaning.
 */
import { describe, expect, it } from 'vitest';
import schemaValidatorModule from 'express-openapi-validator/dist/framework/openapi.schema.validator.js';
import pathToRegexpModule from 'path-to-regexp';
import { buildApp } from '../../src/http/app.js';

type Validator = { validate(doc: unknown): { errors: unknown[] } };
const Ctor = () =>
  (schemaValidatorModule as unknown as { OpenAPISchemaValidator: new (o: object) => Validator })
    .OpenAPISchemaValidator;

describe('the OpenAPI meta-schema validator, as the service leaves it', () => {
  it('is the lazy replacement once the app module is loaded', () => {
    expect(typeof buildApp).toBe('function');
    expect((Ctor() as unknown as { lazy?: boolean }).lazy).toBe(true);
  });

  it('still rejects an invalid contract when asked to check it (validateApiSpec=true)', () => {
    const v = new (Ctor())({ version: '3.1.0', validateApiSpec: true });
    expect(
      v.validate({ openapi: '3.1.0', info: { title: 'x' }, paths: { nope: 1 } }).errors.length,
    ).toBeGreaterThan(0);
    expect(v.validate({ openapi: '3.1.0', info: { title: 'x', version: '1' }, paths: {} }).errors).toEqual(
      [],
    );
  });

  it('compiles nothing and checks nothing when the contract is not being checked', () => {
    const v = new (Ctor())({ version: '3.1.0', validateApiSpec: false });
    // The library's own instance keeps the compiled Ajv function; the stand-in has none.
    expect(v).not.toHaveProperty('validator');
    expect(v.validate({ openapi: '3.1.0', paths: { nope: 1 } }).errors).toEqual([]);
  });
});

describe('route patterns, as the service leaves path-to-regexp', () => {
  type Compiled = { regexp: RegExp; keys: { name: string }[] };
  const compile = (path: unknown, options?: object) =>
    (pathToRegexpModule as unknown as { pathToRegexp: (p: unknown, o?: object) => Compiled }).pathToRegexp(
      path,
      options,
    );

  it('compiles a route once for the options the validator passes, and matches as before', () => {
    expect(typeof buildApp).toBe('function');
    const opts = { sensitive: false, strict: false };
    const first = compile('/payment-intent/:payment_intent_id', opts);
    expect(compile('/payment-intent/:payment_intent_id', { ...opts })).toBe(first);
    expect(first.keys.map((k) => k.name)).toEqual(['payment_intent_id']);
    expect(first.regexp.exec('/payment-intent/pi_123')?.[1]).toBe('pi_123');
    expect(first.regexp.exec('/PAYMENT-INTENT/pi_123')?.[1]).toBe('pi_123');
    expect(first.regexp.exec('/payment-intent')).toBeNull();
  });

  it('keeps options apart, and leaves other options and non-string paths uncached', () => {
    const insensitive = compile('/refund-status/:request_id', { sensitive: false, strict: false });
    const sensitive = compile('/refund-status/:request_id', { sensitive: true, strict: false });
    expect(sensitive).not.toBe(insensitive);
    expect(sensitive.regexp.exec('/REFUND-STATUS/r1')).toBeNull();
    expect(insensitive.regexp.exec('/REFUND-STATUS/r1')?.[1]).toBe('r1');
    const open = compile('/files', { end: false });
    expect(compile('/files', { end: false })).not.toBe(open);
    expect(open.regexp.test('/files/a/b')).toBe(true);
    expect(compile(['/a', '/b'])).not.toBe(compile(['/a', '/b']));
  });
});
