/**
 * The OpenAPI 3.0.3 rendition (generated/openapi-3.0.json) is what 3.0-only client generators read:
 * it must be valid 3.0.3, describe the same API as openapi.yaml, accept the original service's
 * payloads, and be exactly what the converter makes from the current openapi.yaml.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Validator } from '@seriousme/openapi-schema-validator';
import AjvDraft04 from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { renderOpenApi30, toOpenApi30, type JsonObject } from '../../scripts/openapi-30.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const sourceText = readFileSync(`${root}openapi.yaml`, 'utf8');
const source = parse(sourceText) as JsonObject;
const committedText = readFileSync(`${root}generated/openapi-3.0.json`, 'utf8');
const doc30 = JSON.parse(committedText) as JsonObject;

const original = JSON.parse(readFileSync(`${root}tests/fixtures/original-readme-examples.json`, 'utf8')) as {
  requests: Record<string, unknown>;
  queries: Record<string, Record<string, string>>;
  responses: Record<string, { status: number; body: unknown }>;
};

type Obj = Record<string, unknown>;
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function resolve(doc: Obj, node: unknown): Obj {
  let current = node as Obj;
  while (typeof current.$ref === 'string') {
    let target: unknown = doc;
    for (const part of current.$ref.replace(/^#\//, '').split('/')) {
      target = (target as Obj)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    }
    current = target as Obj;
  }
  return current;
}

interface Op {
  key: string;
  op: Obj;
  item: Obj;
}

function operationsOf(doc: Obj): Op[] {
  const out: Op[] = [];
  for (const [path, item] of Object.entries(doc.paths as Record<string, Obj>)) {
    for (const method of METHODS) {
      const op = item[method] as Obj | undefined;
      if (op) out.push({ key: `${method.toUpperCase()} ${path} ${String(op.operationId)}`, op, item });
    }
  }
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

function parametersOf(doc: Obj, { op, item }: Op): string[] {
  const all = [...((item.parameters as unknown[]) ?? []), ...((op.parameters as unknown[]) ?? [])];
  return all
    .map((p) => resolve(doc, p))
    .map((p) => `${String(p.in)}:${String(p.name)}:${p.required === true ? 'required' : 'optional'}`)
    .sort();
}

function schemaNames(doc: Obj): string[] {
  return Object.keys(((doc.components as Obj).schemas as Obj) ?? {}).sort();
}

/** Property names of every schema, by pointer: the converter must neither lose nor rename any. */
function propertyNames(
  node: unknown,
  at = '#',
  out: Record<string, string[]> = {},
): Record<string, string[]> {
  if (Array.isArray(node)) node.forEach((v, i) => propertyNames(v, `${at}/${i}`, out));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node as Obj)) {
      if (k === 'example' || k === 'examples') continue;
      if (k === 'properties' && v && typeof v === 'object' && !Array.isArray(v)) {
        out[at] = Object.keys(v as Obj);
      }
      propertyNames(v, `${at}/${k}`, out);
    }
  }
  return out;
}

describe('generated/openapi-3.0.json', () => {
  it('is what the converter makes from the current openapi.yaml (run `npm run generate` if not)', () => {
    expect(committedText).toBe(renderOpenApi30(source));
  });

  it('is valid OpenAPI 3.0.3 for @seriousme/openapi-schema-validator, with zero errors', async () => {
    expect(doc30.openapi).toBe('3.0.3');
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc30));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.0');
  });

  it('the validator is not vacuous: a 3.1-only construct is refused as 3.0', async () => {
    const broken = structuredClone(doc30);
    ((broken.components as Obj).schemas as Obj).Broken = { type: ['string', 'null'] };
    const result = await new Validator().validate(broken);
    expect(result.valid).toBe(false);
  });

  it('describes the same operations (method, path, operationId) as openapi.yaml', () => {
    const keys30 = operationsOf(doc30).map((o) => o.key);
    expect(keys30).toEqual(operationsOf(source).map((o) => o.key));
    expect(keys30.length).toBeGreaterThanOrEqual(8);
  });

  it('describes the same parameters for every operation', () => {
    const ops31 = operationsOf(source);
    const ops30 = operationsOf(doc30);
    const byKey31 = Object.fromEntries(ops31.map((o) => [o.key, parametersOf(source, o)]));
    const byKey30 = Object.fromEntries(ops30.map((o) => [o.key, parametersOf(doc30, o)]));
    expect(byKey30).toEqual(byKey31);
    expect(byKey30['GET /checkout-session getCheckoutSession']).toContain('query:session_id:required');
  });

  it('has the same component schema names, with the same property names', () => {
    expect(schemaNames(doc30)).toEqual(schemaNames(source));
    const props30 = propertyNames(doc30.components);
    expect(props30).toEqual(propertyNames(source.components));
    expect(props30['#/schemas/RefundStatus']).toContain('refund_id');
  });

  it('keeps the security schemes and the scopes each operation needs', () => {
    const schemes31 = (source.components as Obj).securitySchemes as Obj | undefined;
    expect((doc30.components as Obj).securitySchemes).toEqual(schemes31);
    for (const o of operationsOf(source)) {
      const o30 = operationsOf(doc30).find((x) => x.key === o.key)!;
      const security = o.op.security as Record<string, string[]>[] | undefined;
      if (!security) continue;
      const scoped = security.some((req) => Object.values(req).some((s) => s.length > 0));
      const oauthLike = (name: string) =>
        ['oauth2', 'openIdConnect'].includes(String((schemes31?.[name] as Obj | undefined)?.type));
      // 3.0 allows scopes only on oauth2/openIdConnect; the rest move to x-required-scopes.
      for (const req of o30.op.security as Record<string, string[]>[]) {
        for (const [name, scopes] of Object.entries(req)) if (!oauthLike(name)) expect(scopes).toEqual([]);
      }
      if (scoped) expect(o30.op['x-required-scopes']).toEqual(security);
    }
  });
});

describe('payloads validate against the 3.0 schemas (draft-04 with nullable, as 3.0 tools read them)', () => {
  const ID = 'https://contract.local/openapi-3.0.json';
  const ajv = new AjvDraft04.default({ strict: false, allErrors: true });
  (addFormats as unknown as (a: typeof ajv) => void)(ajv);
  ajv.addSchema({ id: ID, components: (doc30 as Obj).components });

  const ops = Object.fromEntries(operationsOf(doc30).map((o) => [String(o.op.operationId), o]));

  function check(schemaOrRef: Obj, value: unknown): string[] {
    const validate =
      typeof schemaOrRef.$ref === 'string'
        ? ajv.getSchema(`${ID}${schemaOrRef.$ref}`)
        : ajv.compile({ ...schemaOrRef, id: `${ID}/inline-${Math.random()}` });
    if (!validate) throw new Error(`no schema for ${JSON.stringify(schemaOrRef)}`);
    if (validate(value)) return [];
    return (validate.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''}`);
  }

  function requestSchema(operationId: string): Obj {
    const body = resolve(doc30, ops[operationId]!.op.requestBody);
    return ((body.content as Obj)['application/json'] as Obj).schema as Obj;
  }

  function responseSchema(operationId: string, status: number): Obj {
    const responses = ops[operationId]!.op.responses as Obj;
    const response = resolve(doc30, responses[String(status)] ?? responses.default);
    const content = response.content as Obj;
    return (content[Object.keys(content)[0]!] as Obj).schema as Obj;
  }

  function queryParamSchema(operationId: string, name: string): Obj {
    const { op, item } = ops[operationId]!;
    const params = [...((item.parameters as unknown[]) ?? []), ...((op.parameters as unknown[]) ?? [])].map(
      (p) => resolve(doc30, p),
    );
    const param = params.find((p) => p.name === name && p.in === 'query');
    if (!param) throw new Error(`${operationId} has no query parameter ${name}`);
    return param.schema as Obj;
  }

  it.each(Object.entries(original.requests))('original request %s', (name, body) => {
    expect(check(requestSchema(name.replace(/Frontend$/, '')), body)).toEqual([]);
  });

  it.each(Object.entries(original.queries))('original query of %s', (operationId, query) => {
    for (const [name, value] of Object.entries(query)) {
      expect(check(queryParamSchema(operationId, name), value)).toEqual([]);
    }
  });

  it.each(Object.entries(original.responses))('original response %s', (operationId, { status, body }) => {
    const responses = ops[operationId]!.op.responses as Obj;
    expect(String(status) in responses).toBe(true);
    expect(check(responseSchema(operationId, status), body)).toEqual([]);
  });

  it("every example in the 3.0 document validates against its operation's schema", () => {
    let checked = 0;
    for (const { op } of Object.values(ops)) {
      const media: Obj[] = [];
      if (op.requestBody)
        media.push(...(Object.values(resolve(doc30, op.requestBody).content as Obj) as Obj[]));
      for (const r of Object.values(op.responses as Obj)) {
        const content = resolve(doc30, r).content as Obj | undefined;
        if (content) media.push(...(Object.values(content) as Obj[]));
      }
      for (const m of media) {
        for (const ex of Object.values((m.examples as Obj | undefined) ?? {})) {
          const value = resolve(doc30, ex).value;
          expect(check(m.schema as Obj, value), JSON.stringify(value)).toEqual([]);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  it('nullable fields accept null and the rest refuse what the contract forbids', () => {
    const session = { $ref: '#/components/schemas/CheckoutSession' };
    const open = {
      payment_intent: null,
      amount_total: 10000,
      currency: 'sgd',
      customer_email: null,
      payment_status: 'unpaid',
      metadata: {},
    };
    expect(check(session, open)).toEqual([]);
    expect(check(session, { ...open, payment_status: null })).not.toEqual([]);
    expect(check(requestSchema('createPaymentIntent'), { amount: 0, currency: 'sgd' })).not.toEqual([]);
    expect(check(requestSchema('createPaymentIntent'), { amount: 100, currency: 'S$D' })).not.toEqual([]);
    expect(check(responseSchema('createPaymentIntent', 200), { success: false })).not.toEqual([]);
    expect(check({ $ref: '#/components/schemas/RefundState' }, 'refunded')).not.toEqual([]);
  });
});

describe('redocly lint generated/openapi-3.0.json', () => {
  it('reports no errors beyond those openapi.yaml itself explicitly ignores', async () => {
    const run = promisify(execFile);
    const result = await run(
      'npx',
      ['--no-install', 'redocly', 'lint', 'generated/openapi-3.0.json', '--format=json'],
      { cwd: root, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, REDOCLY_TELEMETRY: 'off' } },
    ).catch((err: { stdout?: string; stderr?: string }) => ({
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? '',
    }));
    const json = result.stdout.slice(result.stdout.indexOf('{'));
    const report = JSON.parse(json) as {
      problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
    };
    // Problems the project has accepted for openapi.yaml (e.g. message schemas no operation uses) are
    // accepted for its 3.0 rendition too; anything else is an error of the conversion.
    const ignorePath = `${root}.redocly.lint-ignore.yaml`;
    const ignoreFile = existsSync(ignorePath) ? readFileSync(ignorePath, 'utf8') : '';
    const ignoredForSource = (parse(ignoreFile) as Record<string, Record<string, string[]>> | null)?.[
      'openapi.yaml'
    ];
    const accepted = (p: { ruleId: string; location: { pointer: string }[] }) =>
      (ignoredForSource?.[p.ruleId] ?? []).includes(p.location[0]?.pointer ?? '');
    const errors = report.problems.filter((p) => p.severity === 'error' && !accepted(p));
    expect(errors.map((p) => `${p.ruleId} ${p.location[0]?.pointer ?? ''}: ${p.message}`)).toEqual([]);
    const warnings = report.problems.filter((p) => p.severity !== 'error');
    expect(warnings.map((p) => `${p.ruleId}: ${p.message}`)).toEqual([]);
  });
});

describe('toOpenApi30 (the conversion itself)', () => {
  const base = (extra: JsonObject = {}): JsonObject => ({
    openapi: '3.1.0',
    info: { title: 'T', version: '1', summary: 'short', license: { name: 'MIT', identifier: 'MIT' } },
    paths: {},
    ...extra,
  });

  it('drops info.summary and turns license.identifier into an SPDX URL', () => {
    const out = toOpenApi30(base());
    expect(out.openapi).toBe('3.0.3');
    expect(out.info).toEqual({
      title: 'T',
      version: '1',
      license: { name: 'MIT', url: 'https://spdx.org/licenses/MIT.html' },
    });
  });

  it('empties scopes of non-oauth2 schemes and keeps them as x-required-scopes; oauth2 scopes stay', () => {
    const out = toOpenApi30(
      base({
        security: [{ Key: ['admin'] }],
        components: {
          securitySchemes: {
            Key: { type: 'http', scheme: 'bearer' },
            OAuth: {
              type: 'oauth2',
              flows: { clientCredentials: { tokenUrl: 'https://a.example/t', scopes: { read: 'r' } } },
            },
          },
        },
        paths: {
          '/a': {
            get: {
              security: [{ Key: ['a:read'], OAuth: ['read'] }, { OAuth: ['read'] }],
              responses: { '200': { description: 'ok' } },
            },
            post: { security: [], responses: { '200': { description: 'ok' } } },
          },
        },
      }),
    );
    expect(out.security).toEqual([{ Key: [] }]);
    expect(out['x-required-scopes']).toEqual([{ Key: ['admin'] }]);
    const a = (out.paths as Obj)['/a'] as Record<string, Obj>;
    expect(a.get!.security).toEqual([{ Key: [], OAuth: ['read'] }, { OAuth: ['read'] }]);
    expect(a.get!['x-required-scopes']).toEqual([{ Key: ['a:read'], OAuth: ['read'] }, { OAuth: ['read'] }]);
    expect(a.post!.security).toEqual([]);
    expect(a.post!['x-required-scopes']).toBeUndefined();
  });

  it('converts schema keywords 3.0 lacks, and mentions propertyNames in the description', () => {
    const out = toOpenApi30(
      base({
        components: {
          schemas: {
            S: {
              type: 'object',
              description: 'Tags.',
              propertyNames: { pattern: '^[a-z]+$', maxLength: 8 },
              properties: {
                off: { const: false },
                zero: { const: 0 },
                either: { type: ['string', 'integer', 'null'], minLength: 1 },
                price: { type: 'number', exclusiveMinimum: 0, examples: [1.5, 2] },
                state: { type: ['string', 'null'], enum: ['a', 'b'] },
                list: { type: 'array' },
              },
            },
          },
        },
      }),
    );
    const s = ((out.components as Obj).schemas as Obj).S as Obj;
    expect(s.propertyNames).toBeUndefined();
    expect(s.description).toMatch(
      /^Tags\.\n\nProperty names must be at most 8 characters long, matching `\^\[a-z\]\+\$`/,
    );
    const p = s.properties as Record<string, Obj>;
    expect(p.off).toEqual({ enum: [false] });
    expect(p.zero).toEqual({ enum: [0] });
    expect(p.either).toEqual({
      minLength: 1,
      anyOf: [
        { type: 'string', nullable: true },
        { type: 'integer', nullable: true },
      ],
    });
    expect(p.price).toEqual({ type: 'number', minimum: 0, exclusiveMinimum: true, example: 1.5 });
    expect(p.state).toEqual({ type: 'string', enum: ['a', 'b', null], nullable: true });
    expect(p.list).toEqual({ type: 'array', items: {} });
  });

  it('never rewrites property names or example data that look like keywords', () => {
    const tricky = { const: 'x', type: ['a', 'null'], propertyNames: 1, $id: 'keep', schema: { const: 1 } };
    const input = base({
      components: {
        schemas: {
          T: {
            type: 'object',
            required: ['const', 'propertyNames'],
            properties: {
              const: { type: 'string' },
              propertyNames: { type: 'string' },
              $id: { type: 'string' },
              examples: { type: 'string' },
            },
            example: tricky,
          },
        },
      },
      paths: {
        '/t': {
          post: {
            requestBody: {
              content: {
                'application/json': { schema: { type: 'object' }, examples: { e: { value: tricky } } },
              },
            },
            responses: { '200': { description: 'ok' } },
            'x-anything': tricky,
          },
        },
      },
    });
    const before = JSON.stringify(input);
    const out = toOpenApi30(input);
    expect(JSON.stringify(input)).toBe(before);
    const t = ((out.components as Obj).schemas as Obj).T as Obj;
    expect(Object.keys(t.properties as Obj)).toEqual(['const', 'propertyNames', '$id', 'examples']);
    expect(t.example).toEqual(tricky);
    const post = ((out.paths as Obj)['/t'] as Obj).post as Obj;
    expect(post['x-anything']).toEqual(tricky);
    const media = ((post.requestBody as Obj).content as Obj)['application/json'] as Obj;
    expect(media.examples).toEqual({ e: { value: tricky } });
  });

  it('refuses what 3.0 cannot express instead of silently loosening the contract', () => {
    const withPrefixItems = base({
      components: { schemas: { P: { type: 'array', prefixItems: [{ type: 'string' }] } } },
    });
    expect(() => toOpenApi30(withPrefixItems)).toThrow(/#\/components\/schemas\/P: `prefixItems`/);
    expect(() => toOpenApi30({ ...base(), openapi: '3.0.3' })).toThrow(/expected an OpenAPI 3\.1 document/);
  });
});
