/**
 * src/http/validator-tuning.ts (loaded with the app) replaces express-openapi-validator's
 * OpenAPISchemaValidator so that it compiles the OpenAPI meta-schema only when the contract is actually
 * checked (validateApiSpec=true), keeps the route patterns the validator compiles on every request, looks a
 * request's route up among one route at a time, and resolves the contract's `$ref`s without compiling them
 * with Ajv. Each must keep the library's meaning.
 */
import { describe, expect, it, vi } from 'vitest';
import schemaValidatorModule from 'express-openapi-validator/dist/framework/openapi.schema.validator.js';
import pathToRegexpModule from 'path-to-regexp';
import { OpenApiContext } from 'express-openapi-validator/dist/framework/openapi.context.js';
import { OpenApiSpecLoader } from 'express-openapi-validator/dist/framework/openapi.spec.loader.js';
import metadataModule from 'express-openapi-validator/dist/middlewares/openapi.metadata.js';
import preprocessorModule from 'express-openapi-validator/dist/middlewares/parsers/schema.preprocessor.js';
import { OpenApiValidator } from 'express-openapi-validator/dist/openapi.validator.js';
import { buildApp } from '../../src/http/app.js';
import { loadSpec } from '../../src/http/spec.js';

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

describe('route lookup, as the service leaves the metadata middleware', () => {
  type Middleware = (req: object, res: object, next: (err?: unknown) => void) => unknown;
  type Factory = ((context: object, responseApiDoc: unknown) => Middleware) & {
    oneRoute?: boolean;
    original?: Factory;
  };
  const factory = () => (metadataModule as unknown as { applyOpenApiMetadata: Factory }).applyOpenApiMetadata;

  async function context(ignorePaths?: RegExp) {
    const spec = await new OpenApiSpecLoader({
      apiDoc: structuredClone(loadSpec().document) as never,
      validateApiSpec: false,
    }).load();
    return new OpenApiContext(spec, ignorePaths as RegExp);
  }

  /** What a middleware did with a request: the error it threw, or what it put on the request. */
  function outcome(middleware: Middleware, method: string, url: string) {
    const path = url.split('?')[0]!;
    const req: Record<string, unknown> = {
      method,
      url,
      originalUrl: url,
      path,
      baseUrl: '',
      app: { enabled: () => false },
    };
    try {
      let nextArg: unknown = 'not called';
      middleware(req, {}, (err?: unknown) => (nextArg = err));
      const meta = req['openapi'] as
        | {
            expressRoute: string;
            openApiRoute: string;
            pathParams: unknown;
            schema?: { operationId?: string };
          }
        | undefined;
      return {
        next: nextArg,
        route: meta?.expressRoute,
        openApiRoute: meta?.openApiRoute,
        operationId: meta?.schema?.operationId,
        params: req['params'],
      };
    } catch (err) {
      const e = err as { status?: number; message?: string; headers?: unknown };
      return { status: e.status, message: e.message, headers: e.headers };
    }
  }

  it('is the one-route replacement once the app module is loaded', () => {
    expect(typeof buildApp).toBe('function');
    expect(factory().oneRoute).toBe(true);
    expect(typeof factory().original).toBe('function');
  });

  it('does with every request what the library’s own lookup does', async () => {
    const doc = loadSpec().document as { paths: Record<string, Record<string, unknown>> };
    const urls: [string, string][] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      const concrete = path.replace(/\{[^}]+\}/g, 'x_1%20y');
      for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'])
        urls.push([method, concrete], [method, `${concrete}?a=1&b=%ZZ`]);
      expect(Object.keys(item).length).toBeGreaterThan(0);
    }
    urls.push(
      ['GET', '/nope'],
      ['GET', '/payment-intent/pi_1/extra'],
      ['GET', '/PAYMENT-INTENT/pi_1'],
      ['GET', '/payment-intent/%E0%A4%A'], // malformed percent-encoding
      ['GET', '/payment-intent/'],
      ['GET', '/'],
      ['GET', '/ignored/thing'],
    );
    for (const ignore of [undefined, /^\/ignored/]) {
      const ctx = await context(ignore);
      const ours = factory()(ctx, undefined);
      const theirs = factory().original!(await context(ignore), undefined);
      const seen = new Set<unknown>();
      for (const [method, url] of urls) {
        const expected = outcome(theirs, method, url);
        expect(outcome(ours, method, url), `${method} ${url}`).toEqual(expected);
        seen.add(expected.status ?? expected.operationId ?? expected.next);
      }
      // the list reaches matched operations, 404, 405 and 400 (malformed URI)
      expect([...seen]).toEqual(expect.arrayContaining([404, 405, 400, 'getPaymentIntent']));
    }
  });
});

describe("schema references, as the service leaves the validator's preprocessor", () => {
  type Resolve = ((this: unknown, schema: unknown) => unknown) & { direct?: boolean };
  interface Preprocessor {
    ajv: { getSchema(ref: string): unknown };
    resolveSchema: Resolve;
    preProcess(): { apiDoc: unknown };
  }
  const Preprocessor = (
    preprocessorModule as unknown as {
      SchemaPreprocessor: (new (doc: unknown, ajvOptions: unknown, responses: unknown) => Preprocessor) & {
        prototype: { resolveSchema: Resolve & { original?: Resolve } };
      };
    }
  ).SchemaPreprocessor;
  // The options the validator hands its preprocessor, normalized by the library itself, as app.ts sets them.
  const ajvOptions = (
    new OpenApiValidator({
      apiSpec: {} as never,
      validateRequests: { allErrors: true, allowUnknownQueryParameters: false },
      validateResponses: false,
    }) as unknown as { ajvOpts: { preprocessor: unknown } }
  ).ajvOpts.preprocessor;

  async function loadedContract() {
    const spec = await new OpenApiSpecLoader({
      apiDoc: structuredClone(loadSpec().document) as never,
      validateApiSpec: false,
    }).load();
    return spec.apiDoc as { components: { schemas: Record<string, unknown> } };
  }

  it('is the direct lookup once the app module is loaded', () => {
    expect(typeof buildApp).toBe('function');
    expect(Preprocessor.prototype.resolveSchema.direct).toBe(true);
    expect(typeof Preprocessor.prototype.resolveSchema.original).toBe('function');
  });

  it('preprocesses the contract exactly as the library does, without compiling a schema to do it', async () => {
    const ours = new Preprocessor(await loadedContract(), ajvOptions, false);
    const compiles = vi.spyOn(ours.ajv, 'getSchema');
    const mine = ours.preProcess().apiDoc;
    expect(compiles).not.toHaveBeenCalled();

    const theirs = new Preprocessor(await loadedContract(), ajvOptions, false);
    theirs.resolveSchema = Preprocessor.prototype.resolveSchema.original!;
    const compiled = vi.spyOn(theirs.ajv, 'getSchema');
    const expected = theirs.preProcess().apiDoc;
    expect(compiled).toHaveBeenCalled();
    expect(mine).toEqual(expected);
  });

  it('returns the very object the contract holds, and leaves what it cannot find to the library', async () => {
    const doc = await loadedContract();
    doc.components.schemas['a/b~c'] = { type: 'string' };
    const pre = new Preprocessor(doc, ajvOptions, false);
    const name = Object.keys(doc.components.schemas)[0]!;
    expect(pre.resolveSchema({ $ref: `#/components/schemas/${name}` })).toBe(doc.components.schemas[name]);
    // The very object the library's own lookup (through Ajv) returns.
    const viaAjv = new Preprocessor(doc, ajvOptions, false);
    expect(
      Preprocessor.prototype.resolveSchema.original!.call(viaAjv, { $ref: `#/components/schemas/${name}` }),
    ).toBe(doc.components.schemas[name]);
    expect(pre.resolveSchema({ $ref: '#/components/schemas/a~1b~0c' })).toBe(doc.components.schemas['a/b~c']);
    const inline = { type: 'integer' };
    expect(pre.resolveSchema(inline)).toBe(inline);
    const missing = { $ref: '#/components/schemas/NoSuchSchema' };
    const theirs = new Preprocessor(doc, ajvOptions, false);
    expect(pre.resolveSchema(missing)).toEqual(
      Preprocessor.prototype.resolveSchema.original!.call(theirs, missing),
    );
  });
});
