/**
 * OpenAPI 3.1 → 3.0.3, for client generators that only read 3.0 (oapi-codegen, kin-openapi, older
 * openapi-generator). openapi.yaml stays the source of truth; `npm run generate` writes the result to
 * generated/openapi-3.0.json.
 *
 * @apiture/openapi-down-convert does the bulk of the work, but it walks every object of the document
 * with keyword-name heuristics: a property named `const` or `propertyNames`, or an example payload with
 * such a key, would be rewritten too. So data (examples, defaults, enums, extensions) is parked behind
 * opaque tokens and property names are escaped before it runs, and restored after. What it leaves out
 * (falsy `const`, numeric `exclusiveMinimum`, scoped non-OAuth security requirements, `info.summary`,
 * `propertyNames`, ...) is finished here. Keywords that 3.0 cannot express and that carry meaning fail
 * loudly instead of being dropped in silence.
 */
import { Converter } from '@apiture/openapi-down-convert';

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

// Keywords whose value is one subschema, a list of subschemas, or a map of named subschemas.
const SUBSCHEMA = [
  'items',
  'additionalProperties',
  'not',
  'if',
  'then',
  'else',
  'contains',
  'propertyNames',
  'unevaluatedItems',
  'unevaluatedProperties',
  'additionalItems',
  'contentSchema',
] as const;
const SUBSCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems'] as const;
const SUBSCHEMA_MAPS = [
  'properties',
  'patternProperties',
  'dependentSchemas',
  '$defs',
  'definitions',
] as const;

// Values that are data, not schema: the converter must not look inside them.
const SCHEMA_DATA_KEYS = ['example', 'default', 'enum', 'const', 'discriminator', 'xml', 'externalDocs'];

// JSON Schema 2020-12 keywords with no OpenAPI 3.0 equivalent that change what is valid.
const INEXPRESSIBLE = [
  'prefixItems',
  'contains',
  'minContains',
  'maxContains',
  'if',
  'then',
  'else',
  'dependentSchemas',
  'unevaluatedItems',
  '$defs',
  'definitions',
  '$anchor',
  '$dynamicRef',
  '$dynamicAnchor',
  '$recursiveRef',
  '$recursiveAnchor',
  '$vocabulary',
  'contentSchema',
] as const;

const PROPERTY_PREFIX = '\u0000openapi-30-property:';
const TOKEN_PREFIX = '\u0000openapi-30-data:';

export class OpenApi30ConversionError extends Error {
  constructor(
    readonly pointer: string,
    message: string,
  ) {
    super(`${pointer}: ${message}`);
    this.name = 'OpenApi30ConversionError';
  }
}

const isObject = (v: Json | undefined): v is JsonObject =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

const escapePointer = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

/** Visits every schema under `schema` (itself included), parents before children. */
function walkSchema(schema: Json, at: string, visit: (s: JsonObject, at: string) => void): void {
  if (!isObject(schema)) return;
  visit(schema, at);
  for (const key of SUBSCHEMA) {
    const sub = schema[key];
    if (Array.isArray(sub)) sub.forEach((s, i) => walkSchema(s, `${at}/${key}/${i}`, visit));
    else walkSchema(sub ?? null, `${at}/${key}`, visit);
  }
  for (const key of SUBSCHEMA_LISTS) {
    const list = schema[key];
    if (Array.isArray(list)) list.forEach((s, i) => walkSchema(s, `${at}/${key}/${i}`, visit));
  }
  for (const key of SUBSCHEMA_MAPS) {
    const map = schema[key];
    if (isObject(map)) {
      for (const [name, s] of Object.entries(map)) {
        const shown = name.startsWith(PROPERTY_PREFIX) ? name.slice(PROPERTY_PREFIX.length) : name;
        walkSchema(s, `${at}/${key}/${escapePointer(shown)}`, visit);
      }
    }
  }
}

interface DocumentVisitor {
  schema(s: JsonObject, at: string): void;
  /** Called on each non-schema value that is data (examples, extensions, links); may replace it. */
  data?(value: Json, at: string): Json;
}

/** Visits every schema of an OpenAPI document, and every data value outside schemas. */
function walkDocument(doc: JsonObject, visitor: DocumentVisitor): void {
  const walk = (node: Json, at: string, inComponents: boolean): void => {
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, `${at}/${i}`, false));
      return;
    }
    if (!isObject(node)) return;
    for (const key of Object.keys(node)) {
      const value = node[key] ?? null;
      const here = `${at}/${escapePointer(key)}`;
      const isData =
        key.startsWith('x-') ||
        (!inComponents && (key === 'example' || key === 'examples' || key === 'links')) ||
        (inComponents && (key === 'examples' || key === 'links'));
      if (isData) {
        if (visitor.data) node[key] = visitor.data(value, here);
      } else if (key === 'schema' && !inComponents) {
        walkSchema(value, here, visitor.schema);
      } else if (inComponents && key === 'schemas' && isObject(value)) {
        for (const [name, s] of Object.entries(value))
          walkSchema(s, `${here}/${escapePointer(name)}`, visitor.schema);
      } else if (inComponents && isObject(value)) {
        // Component maps hold named objects whose names are free text (a parameter may be called
        // `example`), so the names themselves are never read as keywords.
        for (const [name, v] of Object.entries(value)) walk(v, `${here}/${escapePointer(name)}`, false);
      } else {
        walk(value, here, at === '#' && key === 'components');
      }
    }
  };
  walk(doc, '#', false);
}

function describe(schema: Json): string {
  if (!isObject(schema)) return `\`${JSON.stringify(schema)}\``;
  const parts: string[] = [];
  const rest: JsonObject = {};
  const min = typeof schema.minLength === 'number' ? schema.minLength : undefined;
  const max = typeof schema.maxLength === 'number' ? schema.maxLength : undefined;
  if (min !== undefined && max !== undefined) parts.push(`${min} to ${max} characters long`);
  else if (min !== undefined) parts.push(`at least ${min} characters long`);
  else if (max !== undefined) parts.push(`at most ${max} characters long`);
  for (const [k, v] of Object.entries(schema)) {
    if (['type', 'description', 'title', 'minLength', 'maxLength'].includes(k)) continue;
    if (k === 'pattern' && typeof v === 'string') parts.push(`matching \`${v}\``);
    else if (k === 'enum' && Array.isArray(v))
      parts.push(`one of ${v.map((x) => `\`${String(x)}\``).join(', ')}`);
    else if (k === 'not' && isObject(v) && Array.isArray(v.enum) && Object.keys(v).length === 1) {
      parts.push(`not ${v.enum.map((x) => `\`${String(x)}\``).join(', ')}`);
    } else rest[k] = v;
  }
  if (Object.keys(rest).length > 0) parts.push(`satisfying \`${JSON.stringify(rest)}\``);
  return parts.join(', ') || 'any string';
}

function appendNote(schema: JsonObject, note: string): void {
  const current = typeof schema.description === 'string' ? schema.description.trimEnd() : '';
  schema.description = current ? `${current}\n\n${note}` : note;
}

/** Turns what 3.0 cannot say into prose, and refuses what would change the contract if dropped. */
function preSchema(schema: JsonObject, at: string, park: (v: Json) => string): void {
  for (const key of INEXPRESSIBLE) {
    if (key in schema) {
      throw new OpenApi30ConversionError(
        at,
        `\`${key}\` has no OpenAPI 3.0 equivalent; rewrite the schema or teach scripts/openapi-30.ts to convert it`,
      );
    }
  }
  if (
    schema.type === 'null' ||
    (Array.isArray(schema.type) && schema.type.length === 1 && schema.type[0] === 'null')
  ) {
    throw new OpenApi30ConversionError(at, "a schema of only `type: 'null'` has no OpenAPI 3.0 equivalent");
  }
  if ('propertyNames' in schema) {
    appendNote(
      schema,
      `Property names must be ${describe(schema.propertyNames ?? null)} (not expressible in OpenAPI 3.0; the service enforces it).`,
    );
    delete schema.propertyNames;
  }
  if (isObject(schema.patternProperties)) {
    const rules = Object.entries(schema.patternProperties).map(
      ([pattern, s]) => `properties named like \`${pattern}\` must be ${describe(s)}`,
    );
    appendNote(schema, `${rules.join('; ')} (not expressible in OpenAPI 3.0; the service enforces it).`);
    delete schema.patternProperties;
  }
  if (isObject(schema.dependentRequired)) {
    const rules = Object.entries(schema.dependentRequired).map(
      ([name, deps]) =>
        `with \`${name}\`, ${(Array.isArray(deps) ? deps : []).map((d) => `\`${String(d)}\``).join(', ')} must be present too`,
    );
    appendNote(schema, `${rules.join('; ')} (not expressible in OpenAPI 3.0; the service enforces it).`);
    delete schema.dependentRequired;
  }
  for (const key of Object.keys(schema)) {
    if (SCHEMA_DATA_KEYS.includes(key) || key.startsWith('x-')) schema[key] = park(schema[key] ?? null);
  }
  if (Array.isArray(schema.examples)) schema.examples = schema.examples.map(park);
  if (isObject(schema.properties)) {
    schema.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([name, s]) => [PROPERTY_PREFIX + name, s]),
    );
  }
}

/** Finishes a schema the converter has been through. */
function postSchema(schema: JsonObject, at: string): void {
  if (Array.isArray(schema.type)) {
    const types = schema.type.filter((t) => t !== 'null');
    if (types.length < schema.type.length) schema.nullable = true;
    if (types.length === 1) schema.type = types[0] ?? null;
    else {
      // Type-specific keywords (minLength, minimum, ...) ignore values of other types, so they can stay
      // on the parent while the alternatives move into anyOf.
      const nullable = schema.nullable === true;
      delete schema.type;
      delete schema.nullable;
      const alternatives = types.map((t): JsonObject =>
        nullable ? { type: t, nullable: true } : { type: t },
      );
      // An existing anyOf must still hold as well, so the type alternatives join it through allOf.
      if (Array.isArray(schema.anyOf)) {
        schema.allOf = [...(Array.isArray(schema.allOf) ? schema.allOf : []), { anyOf: alternatives }];
      } else schema.anyOf = alternatives;
    }
  }
  if ('const' in schema) {
    // The converter skips falsy constants (false, 0, '').
    schema.enum = [schema.const ?? null];
    delete schema.const;
  }
  if ('examples' in schema) {
    if (Array.isArray(schema.examples) && schema.examples.length > 0 && !('example' in schema)) {
      schema.example = schema.examples[0] ?? null;
    }
    delete schema.examples;
  }
  for (const [bound, exclusive] of [
    ['minimum', 'exclusiveMinimum'],
    ['maximum', 'exclusiveMaximum'],
  ] as const) {
    const limit = schema[exclusive];
    if (typeof limit !== 'number') continue;
    const inclusive = schema[bound];
    const stricter =
      typeof inclusive !== 'number' || (bound === 'minimum' ? limit >= inclusive : limit <= inclusive);
    if (stricter) {
      schema[bound] = limit;
      schema[exclusive] = true;
    } else delete schema[exclusive];
  }
  if (schema.nullable === true && Array.isArray(schema.enum) && !schema.enum.includes(null)) {
    schema.enum = [...schema.enum, null];
  }
  if (schema.type === 'array' && !('items' in schema)) schema.items = {};
  if (schema.nullable === true && !('type' in schema) && !('anyOf' in schema)) {
    throw new OpenApi30ConversionError(at, '`nullable` needs a `type` in OpenAPI 3.0');
  }
}

function deepMap(node: Json, fn: (s: string) => Json, keys: (k: string) => string): Json {
  if (typeof node === 'string') return fn(node);
  if (Array.isArray(node)) return node.map((v) => deepMap(v, fn, keys));
  if (!isObject(node)) return node;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(node)) out[keys(k)] = deepMap(v, fn, keys);
  return out;
}

function clone<T extends Json>(value: T): T {
  return structuredClone(value);
}

/** Security requirement scopes: 3.0 allows them only for oauth2 and openIdConnect schemes. */
function fixSecurity(target: JsonObject, original: Json | undefined, schemes: JsonObject): void {
  if (!Array.isArray(original) || !Array.isArray(target.security)) return;
  let moved = false;
  target.security = target.security.map((requirement) => {
    if (!isObject(requirement)) return requirement;
    const fixed: JsonObject = {};
    for (const [name, scopes] of Object.entries(requirement)) {
      const scheme = schemes[name];
      const type = isObject(scheme) ? scheme.type : undefined;
      const scoped = type === 'oauth2' || type === 'openIdConnect';
      if (!scoped && Array.isArray(scopes) && scopes.length > 0) {
        moved = true;
        fixed[name] = [];
      } else fixed[name] = scopes ?? [];
    }
    return fixed;
  });
  // The 3.1 requirements as written, so the scopes each operation needs are not lost.
  if (moved) target['x-required-scopes'] = clone(original);
}

/**
 * Converts an OpenAPI 3.1 document to OpenAPI 3.0.3. Pure: the input is not modified and the same
 * input always gives the same output. Throws OpenApi30ConversionError on a construct 3.0 cannot express.
 */
export function toOpenApi30(doc31: JsonObject): JsonObject {
  if (typeof doc31.openapi !== 'string' || !doc31.openapi.startsWith('3.1.')) {
    throw new OpenApi30ConversionError(
      '#/openapi',
      `expected an OpenAPI 3.1 document, got ${String(doc31.openapi)}`,
    );
  }
  const parked: Json[] = [];
  const park = (value: Json): string => {
    parked.push(value);
    return `${TOKEN_PREFIX}${parked.length - 1}`;
  };

  const prepared = clone(doc31);
  walkDocument(prepared, {
    schema: (s, at) => preSchema(s, at, park),
    data: (value) => park(value),
  });

  const converted = new Converter(prepared, {
    verbose: false,
    allOfTransform: false,
    deleteExampleWithId: false,
    convertSchemaComments: false,
  }).convert() as JsonObject;

  const out = deepMap(
    converted,
    (s) => (s.startsWith(TOKEN_PREFIX) ? clone(parked[Number(s.slice(TOKEN_PREFIX.length))] ?? null) : s),
    (k) => (k.startsWith(PROPERTY_PREFIX) ? k.slice(PROPERTY_PREFIX.length) : k),
  ) as JsonObject;

  walkDocument(out, { schema: postSchema });

  out.openapi = '3.0.3';
  delete out.jsonSchemaDialect;
  delete out.webhooks;
  if (!isObject(out.paths)) out.paths = {};
  const info = out.info;
  if (isObject(info)) {
    // 3.0 has no info.summary; the description already says more.
    delete info.summary;
    const license = info.license;
    const originalInfo = doc31.info;
    const identifier =
      isObject(originalInfo) && isObject(originalInfo.license) ? originalInfo.license.identifier : undefined;
    if (isObject(license)) {
      delete license.identifier;
      // 3.0 identifies a license by URL only; the SPDX page keeps what the identifier said.
      if (typeof identifier === 'string' && typeof license.url !== 'string') {
        license.url = `https://spdx.org/licenses/${identifier}.html`;
      }
    }
  }
  const components = out.components;
  if (isObject(components) && 'pathItems' in components) {
    const usesPathItems = JSON.stringify(out.paths).includes('#/components/pathItems/');
    if (usesPathItems) {
      throw new OpenApi30ConversionError(
        '#/components/pathItems',
        'paths that $ref components/pathItems need 3.1',
      );
    }
    delete components.pathItems;
  }

  const schemes =
    isObject(components) && isObject(components.securitySchemes) ? components.securitySchemes : {};
  fixSecurity(out, doc31.security, schemes);
  const originalPaths = isObject(doc31.paths) ? doc31.paths : {};
  for (const [p, item] of Object.entries(out.paths as JsonObject)) {
    const originalItem = originalPaths[p];
    if (!isObject(item) || !isObject(originalItem)) continue;
    for (const method of HTTP_METHODS) {
      const op = item[method];
      const originalOp = originalItem[method];
      if (isObject(op) && isObject(originalOp)) fixSecurity(op, originalOp.security, schemes);
    }
  }
  return out;
}

/** The 3.0 rendition as written to generated/openapi-3.0.json. */
export function renderOpenApi30(doc31: JsonObject): string {
  return `${JSON.stringify(toOpenApi30(doc31), null, 2)}\n`;
}
