import type { FormObject, FormValue } from './form-parser.js';
import { invalidRequest } from './stripe-error.js';

/**
 * A small description of the parameters an endpoint accepts. It gives Stripe's errors for unknown,
 * missing and mistyped parameters and turns form strings into typed values.
 */
export type Spec =
  | { kind: 'string'; maxLength?: number; enum?: readonly string[]; emptyUnsets?: boolean }
  | { kind: 'integer'; min?: number }
  | { kind: 'boolean' }
  | { kind: 'metadata'; emptyUnsets?: boolean }
  | ObjectSpec
  | { kind: 'array'; items: Spec; maxItems?: number }
  | { kind: 'created' }
  /** A real Stripe parameter this stand-in does not implement: rejected with a clear message. */
  | { kind: 'unsupported' };

export interface ObjectSpec {
  kind: 'object';
  fields: Readonly<Record<string, Spec>>;
  required?: readonly string[];
}

export type Params = Record<string, unknown>;
export type Metadata = Record<string, string>;

export const str = (maxLength = 5000, extra: { emptyUnsets?: boolean } = {}): Spec => ({
  kind: 'string',
  maxLength,
  ...extra,
});
export const oneOf = (values: readonly string[]): Spec => ({ kind: 'string', enum: values });
export const int = (min?: number): Spec =>
  min === undefined ? { kind: 'integer' } : { kind: 'integer', min };
export const bool: Spec = { kind: 'boolean' };
export const metadata = (emptyUnsets = false): Spec => ({ kind: 'metadata', emptyUnsets });
export const arrayOf = (items: Spec, maxItems = 100): Spec => ({ kind: 'array', items, maxItems });
export const obj = (fields: Record<string, Spec>, required: readonly string[] = []): ObjectSpec => ({
  kind: 'object',
  fields,
  required,
});
export const unsupported: Spec = { kind: 'unsupported' };
export const expand = arrayOf(str(), 50);

/** Names Stripe accepts that the sandbox rejects as unsupported. */
export function unsupportedFields(names: readonly string[]): Record<string, Spec> {
  return Object.fromEntries(names.map((n) => [n, unsupported]));
}

export const listParams = {
  limit: int(),
  starting_after: str(),
  ending_before: str(),
  created: { kind: 'created' } as Spec,
  expand,
} satisfies Record<string, Spec>;

const child = (path: string, key: string): string => (path === '' ? key : `${path}[${key}]`);

function describe(value: FormValue): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function emptyError(path: string): never {
  throw invalidRequest(
    `You passed an empty string for '${path}'. We assume empty values are an attempt to unset a parameter; ` +
      `however '${path}' cannot be unset. You should remove '${path}' from your request or supply a non-empty value.`,
    path,
    'parameter_invalid_empty',
  );
}

function parseInteger(value: FormValue, path: string): number {
  if (typeof value !== 'string' || !/^-?\d{1,16}$/.test(value) || !Number.isSafeInteger(Number(value))) {
    if (value === '') emptyError(path);
    throw invalidRequest(`Invalid integer: ${describe(value)}`, path, 'parameter_invalid_integer');
  }
  return Number(value);
}

function validateMetadata(value: FormValue, path: string, emptyUnsets: boolean): Metadata | null {
  if (value === '') {
    if (emptyUnsets) return null;
    emptyError(path);
  }
  if (typeof value === 'string') throw invalidRequest(`Invalid object`, path);
  // `metadata[0]=x` parses as an array; for metadata the indices are just keys.
  const entries: [string, FormValue][] = Array.isArray(value)
    ? value.map((v, i) => [String(i), v])
    : Object.entries(value);
  if (entries.length > 50) {
    throw invalidRequest(`Metadata can have up to 50 keys, but you passed in ${entries.length} keys.`, path);
  }
  const out: [string, string][] = [];
  for (const [key, v] of entries) {
    const keyPath = child(path, key);
    if (typeof v !== 'string') throw invalidRequest(`Invalid string: ${describe(v)}`, keyPath);
    if (key.length > 40) {
      throw invalidRequest(
        `Metadata keys can have up to 40 characters, but you passed in a key that is ${key.length} characters.`,
        keyPath,
      );
    }
    if (v.length > 500) {
      throw invalidRequest(
        `Metadata values can have up to 500 characters, but you passed in a value that is ${v.length} characters.`,
        keyPath,
      );
    }
    out.push([key, v]);
  }
  // fromEntries defines own properties, so a `__proto__` key stays plain data.
  return Object.fromEntries(out);
}

function validateCreated(value: FormValue, path: string): unknown {
  if (typeof value === 'string') return parseInteger(value, path);
  if (Array.isArray(value)) throw invalidRequest('Invalid object', path);
  const out: Record<string, number> = {};
  for (const [key, v] of Object.entries(value)) {
    if (key !== 'gt' && key !== 'gte' && key !== 'lt' && key !== 'lte') {
      throw invalidRequest(
        `Received unknown parameter: ${child(path, key)}`,
        child(path, key),
        'parameter_unknown',
      );
    }
    out[key] = parseInteger(v, child(path, key));
  }
  return out;
}

function validateValue(spec: Spec, value: FormValue, path: string): unknown {
  switch (spec.kind) {
    case 'unsupported':
      throw invalidRequest(
        `The Stripe sandbox does not support the parameter '${path}'. Stripe accepts it, but this offline stand-in does not implement it.`,
        path,
      );
    case 'string': {
      if (typeof value !== 'string') throw invalidRequest(`Invalid string: ${describe(value)}`, path);
      if (value === '') {
        if (spec.emptyUnsets) return null;
        emptyError(path);
      }
      if (spec.enum && !spec.enum.includes(value)) {
        const list =
          spec.enum.length > 1
            ? `${spec.enum.slice(0, -1).join(', ')}, or ${spec.enum.at(-1)}`
            : spec.enum[0];
        throw invalidRequest(`Invalid ${path}: must be one of ${list}`, path);
      }
      if (spec.maxLength !== undefined && value.length > spec.maxLength) {
        throw invalidRequest(
          `Invalid string: ${value.slice(0, 20)}...; must be at most ${spec.maxLength} characters`,
          path,
        );
      }
      return value;
    }
    case 'integer': {
      const n = parseInteger(value, path);
      if (spec.min !== undefined && n < spec.min) {
        throw invalidRequest(
          `This value must be greater than or equal to ${spec.min}.`,
          path,
          'parameter_invalid_integer',
        );
      }
      return n;
    }
    case 'boolean':
      if (value === 'true') return true;
      if (value === 'false') return false;
      if (value === '') emptyError(path);
      throw invalidRequest(`Invalid boolean: ${describe(value)}`, path);
    case 'metadata':
      return validateMetadata(value, path, spec.emptyUnsets === true);
    case 'created':
      return validateCreated(value, path);
    case 'array': {
      if (!Array.isArray(value)) {
        if (value === '') emptyError(path);
        throw invalidRequest('Invalid array', path);
      }
      if (spec.maxItems !== undefined && value.length > spec.maxItems) {
        throw invalidRequest(`Invalid array: must contain at most ${spec.maxItems} elements`, path);
      }
      return value.map((item, i) => validateValue(spec.items, item, child(path, String(i))));
    }
    case 'object':
      if (typeof value !== 'object' || Array.isArray(value)) {
        if (value === '') emptyError(path);
        throw invalidRequest('Invalid object', path);
      }
      return validateObject(spec, value, path);
  }
}

function validateObject(spec: ObjectSpec, input: FormObject, path: string): Params {
  const out: Params = {};
  for (const key of Object.keys(input)) {
    const fieldSpec = Object.hasOwn(spec.fields, key) ? spec.fields[key] : undefined;
    const keyPath = child(path, key);
    if (fieldSpec === undefined) {
      throw invalidRequest(`Received unknown parameter: ${keyPath}`, keyPath, 'parameter_unknown');
    }
    out[key] = validateValue(fieldSpec, input[key] as FormValue, keyPath);
  }
  for (const key of spec.required ?? []) {
    if (out[key] === undefined) {
      const keyPath = child(path, key);
      throw invalidRequest(`Missing required param: ${keyPath}.`, keyPath, 'parameter_missing');
    }
  }
  return out;
}

/** Validates a whole request's parameters against the endpoint's spec. */
export function validateParams(spec: ObjectSpec, input: FormObject): Params {
  return validateObject(spec, input, '');
}

/** Applies a metadata update the way Stripe does: `''` clears all, a `''` value removes one key. */
export function mergeMetadata(current: Metadata, update: Metadata | null | undefined): Metadata {
  if (update === undefined) return current;
  if (update === null) return {};
  const merged = new Map(Object.entries(current));
  for (const [k, v] of Object.entries(update)) {
    if (v === '') merged.delete(k);
    else merged.set(k, v);
  }
  return Object.fromEntries(merged);
}

/** Metadata given on create: `''` values simply mean "not set". */
export function initialMetadata(value: unknown): Metadata {
  return mergeMetadata({}, (value ?? undefined) as Metadata | undefined);
}
