import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Ajv } from 'ajv';
import { configJsonSchema, loadConfigFile } from '../../src/config/index.js';

// Tests run compiled from dist/test/unit/, three levels below the repository root.
const root = fileURLToPath(new URL('../../../', import.meta.url));
const STALE = 'is out of date with src/config/schema.ts: run `npm run docs` and commit the result';

interface GenDocs {
  renderSchemaJson(): string;
  renderMarkdown(): string;
}
const genDocs = async () => (await import(pathToFileURL(join(root, 'scripts/gen-docs.js')).href)) as GenDocs;

test('docs/usher.schema.json matches configJsonSchema()', async () => {
  const committed = readFileSync(join(root, 'docs/usher.schema.json'), 'utf8');
  assert.deepEqual(JSON.parse(committed), configJsonSchema(), `docs/usher.schema.json ${STALE}`);
  assert.equal(committed, (await genDocs()).renderSchemaJson(), `docs/usher.schema.json ${STALE}`);
});

test('docs/config.md matches the generator', async () => {
  const committed = readFileSync(join(root, 'docs/config.md'), 'utf8');
  assert.equal(committed, (await genDocs()).renderMarkdown(), `docs/config.md ${STALE}`);
});

test('the documented example config is valid', async () => {
  const r = await loadConfigFile(join(root, 'test/fixtures/config/reference.yaml'), {});
  assert.equal(r.ok, true);
  assert.deepEqual(r.warnings, []);
});

test('the JSON Schema is a valid draft-07 schema with a title, a description and closed objects', () => {
  const schema = configJsonSchema();
  assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
  assert.equal(typeof schema.title, 'string');
  assert.equal(typeof schema.description, 'string');
  // Editors know nothing of usher's annotation keywords; a plain ajv must still accept the schema.
  const ajv = new Ajv({ strict: false });
  assert.ok(ajv.validateSchema(schema), JSON.stringify(ajv.errors));

  // Every property is documented, and every object rejects unknown keys.
  const walk = (s: Record<string, unknown>, path: string): void => {
    if (s.type === 'object') assert.equal(s.additionalProperties, false, `${path}: additionalProperties`);
    for (const [key, prop] of Object.entries((s.properties ?? {}) as Record<string, Record<string, unknown>>)) {
      assert.equal(typeof prop.description, 'string', `${path}.${key}: description`);
      walk(prop, `${path}.${key}`);
    }
    for (const sub of Object.values((s.patternProperties ?? {}) as Record<string, Record<string, unknown>>)) walk(sub, `${path}.<name>`);
    if (s.items) walk(s.items as Record<string, unknown>, `${path}[]`);
    for (const sub of (s.anyOf ?? []) as Record<string, unknown>[]) walk(sub, path);
  };
  walk(schema, '');
});

test('configJsonSchema() returns a fresh copy each time', () => {
  const a = configJsonSchema();
  (a as { title: string }).title = 'changed';
  assert.notEqual(configJsonSchema().title, 'changed');
});
