import { invalidRequest } from './stripe-error.js';

export type FormValue = string | FormValue[] | FormObject;
export interface FormObject {
  [key: string]: FormValue;
}

export interface FormLimits {
  maxPairs: number;
  maxDepth: number;
  maxArrayIndex: number;
}

export const DEFAULT_FORM_LIMITS: FormLimits = Object.freeze({
  maxPairs: 2000,
  maxDepth: 10,
  maxArrayIndex: 999,
});

type Tree = { [key: string]: Tree | string };

const INDEX = /^(?:0|[1-9]\d{0,8})$/;

function decode(part: string): string {
  try {
    return decodeURIComponent(part.includes('+') ? part.replace(/\+/g, ' ') : part);
  } catch {
    throw invalidRequest('Invalid request: the body or query string is not valid URL encoding.');
  }
}

/** Splits `line_items[0][price_data][currency]` into its root and bracket segments. */
function splitKey(key: string, limits: FormLimits): string[] {
  const open = key.indexOf('[');
  if (open === -1) return [key];
  if (open === 0) throw invalidRequest(`Invalid parameter name: ${key}`);
  const path = [key.slice(0, open)];
  let i = open;
  while (i < key.length) {
    if (key[i] !== '[') throw invalidRequest(`Invalid parameter name: ${key}`);
    const close = key.indexOf(']', i);
    if (close === -1) throw invalidRequest(`Invalid parameter name: ${key}`);
    path.push(key.slice(i + 1, close));
    if (path.length > limits.maxDepth) {
      throw invalidRequest(`Invalid parameter name: ${path[0]} is nested too deeply`, path[0]);
    }
    i = close + 1;
  }
  return path;
}

function nestingError(root: string): never {
  throw invalidRequest(`Invalid value for ${root}: conflicting nesting of this parameter`, root);
}

function insert(tree: Tree, path: string[], value: string, limits: FormLimits): void {
  const root = path[0] ?? '';
  let node: Tree = tree;
  for (let i = 0; i < path.length; i++) {
    let seg = path[i] ?? '';
    const last = i === path.length - 1;
    if (seg === '' && i > 0) {
      // `[]` appends; with more segments after it, Rack semantics reuse the last element until a key repeats.
      const size = Object.keys(node).length;
      const next = path[i + 1];
      const prev = size > 0 ? node[String(size - 1)] : undefined;
      seg =
        !last && next !== undefined && typeof prev === 'object' && !(next in prev)
          ? String(size - 1)
          : String(size);
    } else if (i > 0 && INDEX.test(seg) && Number(seg) > limits.maxArrayIndex) {
      throw invalidRequest(`Invalid array index for ${root}: ${seg}`, root);
    }
    if (last) {
      if (typeof node[seg] === 'object') nestingError(root);
      node[seg] = value;
      return;
    }
    const child = node[seg];
    if (child === undefined) {
      const created: Tree = Object.create(null) as Tree;
      node[seg] = created;
      node = created;
    } else if (typeof child === 'string') {
      nestingError(root);
    } else {
      node = child;
    }
  }
}

/** Hashes whose keys are all array indices become arrays, ordered by index. */
function finalize(tree: Tree, allowArray: boolean): FormObject | FormValue[] {
  const keys = Object.keys(tree);
  const isArray = allowArray && keys.length > 0 && keys.every((k) => INDEX.test(k));
  const convert = (v: Tree | string): FormValue => (typeof v === 'string' ? v : finalize(v, true));
  if (isArray) {
    return keys
      .map(Number)
      .sort((a, b) => a - b)
      .map((k) => convert(tree[String(k)] as Tree | string));
  }
  const out: FormObject = Object.create(null) as FormObject;
  for (const k of keys) out[k] = convert(tree[k] as Tree | string);
  return out;
}

/**
 * Parses Stripe's form encoding (`a[b][0][c]=v`, `expand[]=x`) into nested objects and arrays.
 * Objects have no prototype so keys such as `__proto__` are inert data.
 */
export function parseForm(input: string, limits: FormLimits = DEFAULT_FORM_LIMITS): FormObject {
  const tree: Tree = Object.create(null) as Tree;
  if (input.length === 0) return tree as FormObject;
  let pairs = 0;
  for (const part of input.split('&')) {
    if (part.length === 0) continue;
    if (++pairs > limits.maxPairs) {
      throw invalidRequest(`Invalid request: too many parameters (more than ${limits.maxPairs}).`);
    }
    const eq = part.indexOf('=');
    const key = decode(eq === -1 ? part : part.slice(0, eq));
    const value = eq === -1 ? '' : decode(part.slice(eq + 1));
    if (key.length === 0) continue;
    insert(tree, splitKey(key, limits), value, limits);
  }
  // The root is always a hash of parameters, even if every name happens to be numeric.
  return finalize(tree, false) as FormObject;
}
