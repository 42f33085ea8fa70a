/**
 * src/http/app.ts replaces express-openapi-validator's OpenAPISchemaValidator so that it compiles the
 * OpenAPI meta-schema only when the contract is actually checked (validateApiSpec=true). Both sides of
 * that switch must keep their meaning.
 */
import { describe, expect, it } from 'vitest';
import schemaValidatorModule from 'express-openapi-validator/dist/framework/openapi.schema.validator.js';
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
