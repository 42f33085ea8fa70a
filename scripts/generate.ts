/**
 * Writes everything derived from openapi.yaml into generated/.
 * `--check` writes nothing and fails when a committed file is stale, so CI catches a contract
 * change that was not regenerated.
 */
import { createHash } from 'node:crypto';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import openapiTS, { astToString } from 'openapi-typescript';
import { parse } from 'yaml';
import { renderOpenApi30, type JsonObject } from './openapi-30.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const specPath = path.join(root, 'openapi.yaml');
const outDir = path.join(root, 'generated');

const banner = '// Generated from openapi.yaml by `npm run generate`. Do not edit by hand.\n\n';

async function renderTypes(): Promise<string> {
  // defaultNonNullable would make a property with a `default` required in component schemas, so a
  // request body without it (the original README's `{ amount, currency }` without `confirm`) would not
  // compile in a typed client although the service accepts it.
  const ast = await openapiTS(new URL(`file://${specPath}`), {
    alphabetize: false,
    defaultNonNullable: false,
  });
  return banner + astToString(ast);
}

// For client generators that only read OpenAPI 3.0; JSON has no room for a banner, so the
// generated/ folder and this script are what mark it as derived.
async function renderOpenApi30File(): Promise<string> {
  return renderOpenApi30(parse(await readFile(specPath, 'utf8')) as JsonObject);
}

// The contract as JSON, for the service to load at start without a YAML parser (JSON.parse is ~50x
// faster). It names the SHA-256 of the openapi.yaml it came from, so a stale copy is noticed and ignored.
async function renderSpecJson(): Promise<string> {
  const yaml = await readFile(specPath, 'utf8');
  const sourceSha256 = createHash('sha256').update(yaml).digest('hex');
  return `${JSON.stringify({ sourceSha256, document: parse(yaml) as JsonObject })}\n`;
}

async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const outputs: Record<string, string> = {
    'openapi.ts': await renderTypes(),
    'openapi-3.0.json': await renderOpenApi30File(),
    'openapi.json': await renderSpecJson(),
  };
  const stale: string[] = [];
  for (const [name, content] of Object.entries(outputs)) {
    const file = path.join(outDir, name);
    const current = await readFile(file, 'utf8').catch(() => null);
    if (current === content) continue;
    if (check) stale.push(name);
    else {
      await mkdir(outDir, { recursive: true });
      await writeFile(file, content);
      console.log(`wrote generated/${name}`);
    }
  }
  if (stale.length > 0) {
    console.error(`generated/ is stale (${stale.join(', ')}): run \`npm run generate\` and commit.`);
    process.exit(1);
  }
  if (check) console.log('generated/ is up to date');
}

await main();
