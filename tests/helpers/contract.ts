/** Validates payloads against openapi.yaml's own schemas (JSON Schema 2020-12, as OpenAPI 3.1 uses). */
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { loadSpec } from '../../src/http/spec.js';

type Json = Record<string, unknown>;

export const spec = loadSpec();
const doc = spec.document as Json;
const SPEC_ID = 'https://contract.local/openapi.json';

const ajv = new Ajv2020({ strict: false, allErrors: true });
(addFormats as unknown as (a: Ajv2020) => void)(ajv);
ajv.addSchema({ ...doc, $id: SPEC_ID });

function resolve(ref: string): Json {
  let node: unknown = doc;
  for (const part of ref.replace(/^#\//, '').split('/')) node = (node as Json)[part.replace(/~1/g, '/')];
  return node as Json;
}

function deref(node: Json): Json {
  return typeof node.$ref === 'string' ? deref(resolve(node.$ref)) : node;
}

export interface OperationInfo {
  operationId: string;
  method: string;
  path: string;
  op: Json;
}

export function operations(): OperationInfo[] {
  const out: OperationInfo[] = [];
  for (const [p, item] of Object.entries(doc.paths as Record<string, Json>)) {
    for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
      const op = item[method] as Json | undefined;
      if (op) out.push({ operationId: op.operationId as string, method, path: p, op });
    }
  }
  return out;
}

export function operation(operationId: string): OperationInfo {
  const found = operations().find((o) => o.operationId === operationId);
  if (!found) throw new Error(`no operation ${operationId}`);
  return found;
}

function pointerOf(node: Json, fallback: string): string {
  return typeof node.$ref === 'string' ? node.$ref : fallback;
}

/** Pointer (inside the spec) to the schema of an operation's request body. */
export function requestSchemaPointer(operationId: string): string {
  const { path: p, method, op } = operation(operationId);
  const body = deref(op.requestBody as Json);
  const media = (body.content as Json)['application/json'] as Json;
  const schema = media.schema as Json;
  return pointerOf(
    schema,
    `#/paths/${p.replace(/\//g, '~1')}/${method}/requestBody/content/application~1json/schema`,
  );
}

const esc = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1');

export function responseSchemaPointer(operationId: string, status: string, mediaType?: string): string {
  const { op, path: p, method } = operation(operationId);
  const responses = op.responses as Json;
  const key = status in responses ? status : 'default';
  let pointer = `#/paths/${esc(p)}/${method}/responses/${key}`;
  let response = responses[key] as Json;
  while (typeof response.$ref === 'string') {
    pointer = response.$ref;
    response = resolve(response.$ref);
  }
  const content = response.content as Json;
  const type = mediaType ?? Object.keys(content)[0]!;
  const schema = (content[type] as Json).schema as Json;
  return pointerOf(schema, `${pointer}/content/${esc(type)}/schema`);
}

export function validate(pointer: string, value: unknown): string[] {
  const validateFn = ajv.getSchema(`${SPEC_ID}${pointer}`);
  if (!validateFn) throw new Error(`no schema at ${pointer}`);
  if (validateFn(value)) return [];
  return (validateFn.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message ?? ''}`);
}

export function validateResponse(
  operationId: string,
  status: number,
  body: unknown,
  mediaType?: string,
): string[] {
  const { op } = operation(operationId);
  const responses = op.responses as Json;
  if (!(String(status) in responses) && !('default' in responses))
    return [`status ${status} is not documented`];
  return validate(responseSchemaPointer(operationId, String(status), mediaType), body);
}

/** An answer as a client sees it. */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * Headers a client acts on (or quotes to support). When the service sends one, the answer's entry in the contract must name it, or a
 * generated client has no typed way to read it (when to retry, which scheme to authenticate with).
 */
const ACTIONABLE_HEADERS = [
  'retry-after',
  'www-authenticate',
  'idempotent-replayed',
  'x-request-id',
  'ratelimit',
  'ratelimit-policy',
];

/**
 * How `answer` contradicts the contract of `operationId`: its status is not listed (the `default` entry only
 * covers 500, the one failure nobody plans), its Content-Type is not one the status documents, its body does
 * not match that media type's schema, or an actionable header is sent but not documented.
 */
export function answerViolations(operationId: string, answer: Answer): string[] {
  const { op } = operation(operationId);
  const responses = op.responses as Json;
  const status = String(answer.status);
  const where = `${operationId} ${status}`;
  if (!(status in responses) && answer.status !== 500) return [`${where}: status not documented`];
  const response = deref(responses[status in responses ? status : 'default'] as Json);
  const mediaType = (answer.headers.get('content-type') ?? '').split(';')[0]!.trim();
  const content = (response.content ?? {}) as Json;
  if (!(mediaType in content))
    return [
      `${where}: content type ${mediaType || '(none)'} not documented (${Object.keys(content).join(', ')})`,
    ];
  const out: string[] = [];
  let body: unknown = answer.text;
  if (/[/+]json$/.test(mediaType)) {
    try {
      body = JSON.parse(answer.text);
    } catch {
      return [`${where}: body is not JSON`];
    }
  }
  out.push(
    ...validate(responseSchemaPointer(operationId, status, mediaType), body).map(
      (e) => `${where}: body ${e}`,
    ),
  );
  const documented = new Set(Object.keys((response.headers ?? {}) as Json).map((h) => h.toLowerCase()));
  for (const header of ACTIONABLE_HEADERS) {
    if (answer.headers.has(header) && !documented.has(header))
      out.push(`${where}: header ${header} is sent but not documented`);
  }
  return out;
}
