/**
 * Four costs express-openapi-validator 5.x pays without need, taken out by replacing functions on the
 * same module instances the library uses (also inside the bundle). All fail safe: if a package's
 * layout changes, nothing is replaced and the service is only slower.
 */
import schemaValidatorModule from 'express-openapi-validator/dist/framework/openapi.schema.validator.js';
import metadataModule from 'express-openapi-validator/dist/middlewares/openapi.metadata.js';
import preprocessorModule from 'express-openapi-validator/dist/middlewares/parsers/schema.preprocessor.js';
import pathToRegexpModule from 'path-to-regexp';

/**
 * express-openapi-validator 5.x compiles the whole OpenAPI meta-schema with Ajv at every start, even with
 * validateApiSpec=false, only to never use it: ~110 ms, a fifth of an API process's start. When the
 * contract is not being checked (production: CI lints it), its framework gets a validator that compiles
 * nothing; with validateApiSpec=true (tests) the library's own class runs unchanged. Fails safe: if the
 * library's internals move, nothing is replaced and start-up is only slower.
 */
function skipUnusedSpecValidatorCompile(): void {
  try {
    const mod = schemaValidatorModule as unknown as {
      OpenAPISchemaValidator?: new (opts: { validateApiSpec?: boolean }) => unknown;
    };
    const Original = mod.OpenAPISchemaValidator;
    if (typeof Original !== 'function' || (Original as { lazy?: boolean }).lazy) return;
    const Lazy = function (this: unknown, opts: { validateApiSpec?: boolean }) {
      return opts.validateApiSpec ? new Original(opts) : { validate: () => ({ errors: [] }) };
    } as unknown as new (opts: { validateApiSpec?: boolean }) => unknown;
    (Lazy as { lazy?: boolean }).lazy = true;
    mod.OpenAPISchemaValidator = Lazy;
  } catch {
    // a different layout of the package: keep its behaviour
  }
}

type PathToRegexp = (path: unknown, options?: Record<string, unknown>) => unknown;

/** Options the validator passes; any other option (or a non-string path) goes to the original uncached. */
const CACHEABLE_OPTIONS = new Set(['sensitive', 'strict']);
const ROUTE_CACHE_LIMIT = 1_000;

/**
 * The validator's route lookup (openapi.metadata.js, `lookupRoute`) compiles a path-to-regexp pattern
 * for every route of the contract, on every request, until one matches: about a tenth of a request's
 * validation time for a dozen routes. pathToRegexp is a pure function of its path and options and its
 * result is only read (the regexp has no `g` flag, so exec keeps no state), so the compiled patterns
 * are kept. The contract's routes are a fixed, small set; the cache is still bounded.
 */
function cacheRoutePatterns(): void {
  try {
    const mod = pathToRegexpModule as unknown as { pathToRegexp?: PathToRegexp & { cached?: boolean } };
    const original = mod.pathToRegexp;
    if (typeof original !== 'function' || original.cached) return;
    const cache = new Map<string, unknown>();
    const cached = ((path: unknown, options?: Record<string, unknown>) => {
      if (
        typeof path !== 'string' ||
        (options && Object.keys(options).some((k) => !CACHEABLE_OPTIONS.has(k)))
      )
        return original(path, options);
      const key = `${options?.['sensitive'] ? 's' : '-'}${options?.['strict'] ? 's' : '-'}${path}`;
      let compiled = cache.get(key);
      if (compiled === undefined) {
        compiled = original(path, options);
        if (cache.size >= ROUTE_CACHE_LIMIT) cache.clear();
        cache.set(key, compiled);
      }
      return compiled;
    }) as PathToRegexp & { cached?: boolean };
    cached.cached = true;
    mod.pathToRegexp = cached;
  } catch {
    // a different layout of the package: keep its behaviour
  }
}

interface MetadataContext {
  expressRouteMap: Record<string, unknown>;
  useRequestUrl?: boolean;
}
type Middleware = (req: RoutedRequest, res: unknown, next: (err?: unknown) => void) => unknown;
interface RoutedRequest {
  url: string;
  originalUrl: string;
  app: { enabled(setting: string): boolean };
}
type MetadataFactory = ((context: MetadataContext, responseApiDoc: unknown) => Middleware) & {
  oneRoute?: boolean;
  /** The library's own factory (tests compare the two). */
  original?: MetadataFactory;
};

/**
 * The validator's metadata middleware (`applyOpenApiMetadata`) finds a request's route by walking every
 * route of the contract, building options, reading two app settings and fetching the compiled pattern for
 * each (~15 µs a request for this contract). Here the library's own middleware still does all of its work,
 * but is built once per route over a context that holds only that route (and once over none); a request
 * is handed to the middleware of the first route whose pattern matches, compiled exactly as the library
 * compiles it, in the library's order. A route it picks is the one the library would have picked, so its
 * answers (params, 404, 405, ignored paths) do not change.
 */
function lookUpOneRoute(): void {
  try {
    const mod = metadataModule as unknown as { applyOpenApiMetadata?: MetadataFactory };
    const regexps = pathToRegexpModule as unknown as {
      pathToRegexp?: (path: string, options: object) => { regexp: RegExp };
    };
    const original = mod.applyOpenApiMetadata;
    if (typeof original !== 'function' || original.oneRoute || typeof regexps.pathToRegexp !== 'function')
      return;
    const oneRoute: MetadataFactory = (context, responseApiDoc) => {
      const routes = Object.keys(context.expressRouteMap);
      const only = (map: Record<string, unknown>) =>
        original(
          Object.create(context, { expressRouteMap: { value: map } }) as MetadataContext,
          responseApiDoc,
        );
      const perRoute = routes.map((route) => only({ [route]: context.expressRouteMap[route] }));
      const none = only({});
      // Patterns per (strict, case-sensitive) routing setting, as the library reads them from the app.
      const patterns: (RegExp[] | undefined)[] = [];
      return (req, res, next) => {
        const strict = !!req.app.enabled('strict routing');
        const sensitive = !!req.app.enabled('case sensitive routing');
        const flags = (strict ? 1 : 0) | (sensitive ? 2 : 0);
        const list = (patterns[flags] ??= routes.map(
          (r) => regexps.pathToRegexp!(r, { sensitive, strict }).regexp,
        ));
        const url = context.useRequestUrl ? req.url : req.originalUrl;
        const query = url.indexOf('?');
        const path = query === -1 ? url : url.slice(0, query);
        for (let i = 0; i < list.length; i++) if (list[i]!.test(path)) return perRoute[i]!(req, res, next);
        return none(req, res, next);
      };
    };
    oneRoute.oneRoute = true;
    oneRoute.original = original;
    mod.applyOpenApiMetadata = oneRoute;
  } catch {
    // a different layout of the package: keep its behaviour
  }
}

interface Preprocessor {
  apiDoc: unknown;
  resolvedSchemaCache: Map<string, unknown>;
}
type ResolveSchema = ((this: Preprocessor, schema: unknown) => unknown) & {
  direct?: boolean;
  /** The library's own method (tests compare the two). */
  original?: ResolveSchema;
};

/** What a local JSON pointer (`#/components/schemas/Refund`) points at in `doc`, or undefined. */
function atPointer(doc: unknown, ref: string): unknown {
  let node = doc;
  for (const token of ref.slice(2).split('/')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[token.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return node;
}

/**
 * The validator's schema preprocessor (run once, before the first request is validated) resolves each
 * `$ref` it meets by asking Ajv for the compiled validator of that reference and keeping only its `.schema`:
 * Ajv compiles every component schema the contract references (~100 ms of a start) for an object the
 * contract already holds. Ajv keeps the object it was given (createRequestAjv adds each
 * `#/components/schemas/<name>` by reference), so looking the pointer up in the same document returns the
 * very object the library would have got, without compiling it. Refs that are not local pointers, or that
 * point at nothing, go to the library's own method. Validators are still compiled by Ajv, per route.
 */
function resolveRefsWithoutCompiling(): void {
  try {
    const mod = preprocessorModule as unknown as {
      SchemaPreprocessor?: { prototype: { resolveSchema?: ResolveSchema } };
    };
    const proto = mod.SchemaPreprocessor?.prototype;
    const original = proto?.resolveSchema;
    if (!proto || typeof original !== 'function' || original.direct) return;
    const direct: ResolveSchema = function (this: Preprocessor, schema: unknown) {
      const ref = (schema as { $ref?: unknown } | null)?.$ref;
      if (typeof ref === 'string' && ref.startsWith('#/') && this.resolvedSchemaCache instanceof Map) {
        if (this.resolvedSchemaCache.has(ref)) return this.resolvedSchemaCache.get(ref);
        const found = atPointer(this.apiDoc, ref);
        if (found !== undefined && found !== null) {
          this.resolvedSchemaCache.set(ref, found);
          return found;
        }
      }
      return original.call(this, schema);
    };
    direct.direct = true;
    direct.original = original;
    proto.resolveSchema = direct;
  } catch {
    // a different layout of the package: keep its behaviour
  }
}

skipUnusedSpecValidatorCompile();
resolveRefsWithoutCompiling();
cacheRoutePatterns();
lookUpOneRoute();
