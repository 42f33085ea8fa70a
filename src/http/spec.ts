/** openapi.yaml, loaded once and shared by the validator, the docs and the dispatcher. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { parse } from 'yaml';

function locateSpec(): string {
  // Works both from src/ (tsx, vitest) and from dist/src/ (compiled).
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const rel of ['../../openapi.yaml', '../../../openapi.yaml']) {
    const candidate = path.resolve(here, rel);
    try {
      readFileSync(candidate, { flag: 'r' });
      return candidate;
    } catch {
      // try the next layout
    }
  }
  throw new Error('openapi.yaml not found next to the service');
}

export interface LoadedSpec {
  readonly path: string;
  readonly yaml: string;
  readonly document: Record<string, unknown>;
  readonly json: string;
}

export function loadSpec(): LoadedSpec {
  const file = locateSpec();
  const yaml = readFileSync(file, 'utf8');
  const document = parse(yaml) as Record<string, unknown>;
  return { path: file, yaml, document, json: JSON.stringify(document) };
}
