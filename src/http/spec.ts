/** openapi.yaml, loaded once and shared by the validator, the docs and the dispatcher. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parse } from 'yaml';

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

export function loadSpec(): LoadedSpec {
  const file = locate('openapi.yaml');
  const yaml = readFileSync(file, 'utf8');
  const document = parse(yaml) as Record<string, unknown>;
  const json30 = readFileSync(locate('generated/openapi-3.0.json'), 'utf8');
  return { path: file, yaml, document, json: JSON.stringify(document), json30 };
}
