/**
 * Amounts in minor units reach twelve digits (idr), and Unix times pass 2^31-1 in 2038, but openapi.yaml typed them
 * as bare `integer`: client generators for Java, C# and Go read that as a 32-bit int, and such a client overflowed on
 * an idr amount over Rp 21,474,836.47 or a timestamp after January 2038. Every amount-like and Unix-time integer of
 * the contract, in requests and answers, says `format: int64` now, in openapi.yaml and in the renditions generated
 * from it (generated/openapi.json and the 3.0 document 3.0-only generators read), with its bounds as before.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

type Obj = Record<string, unknown>;

const root = fileURLToPath(new URL('../../', import.meta.url));
const documents: [string, Obj][] = [
  ['openapi.yaml', parse(readFileSync(`${root}openapi.yaml`, 'utf8')) as Obj],
  [
    'generated/openapi.json',
    (JSON.parse(readFileSync(`${root}generated/openapi.json`, 'utf8')) as { document: Obj }).document,
  ],
  [
    'generated/openapi-3.0.json',
    JSON.parse(readFileSync(`${root}generated/openapi-3.0.json`, 'utf8')) as Obj,
  ],
];

/** Names of a property, parameter or component schema that holds an amount in minor units or a Unix time. */
const AMOUNT_OR_TIME = /^(amount|amount_.+|.+_amount|unit_amount|created|expires_at|.+_at|Amount|.+Amount)$/;

function isInteger(schema: Obj): boolean {
  return schema.type === 'integer' || (Array.isArray(schema.type) && schema.type.includes('integer'));
}

interface Found {
  at: string;
  schema: Obj;
}

/** Every integer schema (not a $ref) in `doc` under a name AMOUNT_OR_TIME matches: properties, parameters, components. */
function amountAndTimeIntegers(doc: Obj): Found[] {
  const found: Found[] = [];
  const walk = (node: unknown, at: string, name: string | undefined): void => {
    if (Array.isArray(node)) {
      node.forEach((v, i) => walk(v, `${at}/${i}`, name));
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const obj = node as Obj;
    if (typeof obj.$ref !== 'string' && isInteger(obj) && name !== undefined && AMOUNT_OR_TIME.test(name))
      found.push({ at, schema: obj });
    for (const [key, value] of Object.entries(obj)) {
      // Examples are data, not schemas.
      if (key === 'example' || key === 'examples') continue;
      if (key === 'properties' || key === 'schemas') {
        for (const [prop, sub] of Object.entries(value as Obj)) walk(sub, `${at}/${key}/${prop}`, prop);
      } else if (key === 'schema' && typeof obj.name === 'string') {
        walk(value, `${at}/schema`, obj.name); // a parameter's or header's schema
      } else {
        // A list or a nullable wrapper of the same value keeps its name (items, oneOf/anyOf branches).
        const keepsName = ['items', 'oneOf', 'anyOf', 'allOf'].includes(key) || /^\d+$/.test(key);
        walk(value, `${at}/${key}`, keepsName ? name : undefined);
      }
    }
  };
  walk(doc, '#', undefined);
  return found;
}

describe.each(documents)('%s', (_file, doc) => {
  const found = amountAndTimeIntegers(doc);

  it('finds the amounts and times it is meant to check (the walk is not vacuous)', () => {
    const at = found.map((f) => f.at);
    for (const expected of [
      '#/components/schemas/Amount',
      '#/components/schemas/UnitAmount',
      '#/components/schemas/PaymentIntent/properties/amount_received',
      '#/components/schemas/PaymentIntent/properties/created',
    ])
      expect(at).toContain(expected);
    expect(at.some((a) => a.endsWith('/properties/expires_at'))).toBe(true);
    expect(at.some((a) => a.endsWith('/properties/amount_total'))).toBe(true);
    expect(found.length).toBeGreaterThanOrEqual(12);
  });

  it('every amount and Unix time is format: int64', () => {
    const not64 = found.filter((f) => f.schema.format !== 'int64').map((f) => f.at);
    expect(not64).toEqual([]);
  });

  it('keeps the bounds of Amount and UnitAmount', () => {
    const schemas = (doc.components as Obj).schemas as Record<string, Obj>;
    expect(schemas.Amount).toMatchObject({
      type: 'integer',
      format: 'int64',
      minimum: 1,
      maximum: 999999999999,
    });
    expect(schemas.UnitAmount).toMatchObject({
      type: 'integer',
      format: 'int64',
      minimum: 0,
      maximum: 999999999999,
    });
  });
});
