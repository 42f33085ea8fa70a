/** openapi.yaml, loaded once and shared by the validator, the docs and the dispatcher. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

function locate(file: string): string {
  // Works both from src/ (tsx, vitest) and from dist/src/ (compiled).
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const rel of [`../../${file}`, `../../../${file}`]) {
    const candidate = path.resolve(here, rel);
    try {
      readFileSync(candidate, { flag: 'r' });
      return candidate;
    } catch {
      // try the next layout
    }
  }
  throw new Error(`${file} not found next to the service`);
}

export interface LoadedSpec {
  readonly path: string;
  readonly yaml: string;
  readonly document: Record<string, unknown>;
  readonly json: string;
  /** The OpenAPI 3.0.3 rendition (generated/openapi-3.0.json) for tools that cannot read 3.1. */
  readonly json30: string;
}

/**
 * generated/openapi.json (written by `npm run generate`) when it was made from this very openapi.yaml:
 * parsing the YAML costs ~80 ms of every start, JSON.parse a couple. Anything else (missing, stale after
 * an edit that was not regenerated) falls back to the YAML, so the contract served is always the file's.
 */
function parsedDocument(yaml: string): Record<string, unknown> {
  try {
    const cached = JSON.parse(readFileSync(locate('generated/openapi.json'), 'utf8')) as {
      sourceSha256?: unknown;
      document?: unknown;
    };
    const sha = createHash('sha256').update(yaml).digest('hex');
    if (cached.sourceSha256 === sha && cached.document && typeof cached.document === 'object') {
      return cached.document as Record<string, unknown>;
    }
  } catch {
    // no usable copy: parse the YAML
  }
  // The YAML parser is only loaded on this path.
  const { parse } = createRequire(import.meta.url)('yaml') as typeof Yaml;
  return parse(yaml) as Record<string, unknown>;
}

export function loadSpec(): LoadedSpec {
  const file = locate('openapi.yaml');
  const yaml = readFileSync(file, 'utf8');
  const document = parsedDocument(yaml);
  const json30 = readFileSync(locate('generated/openapi-3.0.json'), 'utf8');
  return { path: file, yaml, document, json: JSON.stringify(document), json30 };
}
