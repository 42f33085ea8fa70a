/**
 * The service loads the contract from generated/openapi.json (fast) only when it was generated from the
 * openapi.yaml next to it; the document it serves and validates with must equal the YAML either way.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadSpec } from '../../src/http/spec.js';

describe('loadSpec', () => {
  const yaml = readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8');

  it('serves exactly the document openapi.yaml describes', () => {
    const spec = loadSpec();
    expect(spec.document).toEqual(parse(yaml));
    expect(JSON.parse(spec.json)).toEqual(parse(yaml));
    expect(spec.yaml).toBe(yaml);
  });

  it('has a generated JSON copy made from this openapi.yaml, so start-up skips the YAML parser', () => {
    const copy = JSON.parse(
      readFileSync(new URL('../../generated/openapi.json', import.meta.url), 'utf8'),
    ) as {
      sourceSha256: string;
      document: unknown;
    };
    expect(copy.sourceSha256).toBe(createHash('sha256').update(yaml).digest('hex'));
    expect(copy.document).toEqual(parse(yaml));
  });
});
