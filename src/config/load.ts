// Loading a config: text (YAML or JSON) or a JS module or object → schema → semantic checks →
// normalized, frozen UsherConfig. Problems never throw; they come back as issues with file,
// line and column, in source order.
import { readFile, stat } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isScalar, LineCounter, parseDocument, visit, type Document, type YAMLError } from 'yaml';
import { checkSemantics } from './check.js';
import { warnBareDurations } from './check-units.js';
import { interpolateDocument } from './interpolate.js';
import { jsonSyntaxError } from './json-syntax.js';
import { Issues, noLocator, sortIssues, type Locator } from './issues.js';
import { baseDirOf, normalize } from './normalize.js';
import { offsetToPosition, yamlLocator } from './positions.js';
import type { ConfigInput } from './schema.js';
import type { LoadResult } from './types.js';
import { configJsonSchema, validateSchema } from './validate.js';

/** Typed identity for JS configs: `export default defineConfig({ listeners: [...] })`. */
export function defineConfig(config: ConfigInput): ConfigInput {
  return config;
}

/** JSON by extension; for other names than .yaml/.yml, JSON when the text starts with "{". */
function isJson(file: string, text: string): boolean {
  const ext = extname(file).toLowerCase();
  if (ext === '.json') return true;
  if (ext === '.yaml' || ext === '.yml') return false;
  return text.trimStart().startsWith('{');
}

/**
 * Parses YAML or JSON text. JSON is checked as JSON first (json-syntax.ts), then goes through the
 * yaml parser too (with its strict JSON schema), so both get positions. `${VAR}` and
 * `${VAR:-default}` are expanded from `env`.
 */
export function loadConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): LoadResult {
  const json = isJson(file, text);
  const jsonError = json ? jsonSyntaxError(text) : undefined;
  if (jsonError !== undefined) {
    const before = text.slice(0, jsonError.offset);
    const line = before.split('\n').length;
    const issues = new Issues(file);
    issues.error([], `invalid JSON: ${jsonError.message}`, { position: { line, column: jsonError.offset - before.lastIndexOf('\n') } });
    return result(issues);
  }
  const lineCounter = new LineCounter();
  // Duplicate keys are found by duplicateKeys() below: the parser's own check compares each key
  // with every earlier one of its mapping, and 20k upstreams took 4.5 s in it.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, schema: json ? 'json' : 'core', uniqueKeys: false });
  const issues = new Issues(file, yamlLocator(doc, lineCounter));
  const syntax = (e: YAMLError) => ({ position: offsetToPosition(lineCounter, e.pos[0]) });
  for (const e of doc.errors) issues.error([], `invalid ${json ? 'JSON' : 'YAML'}: ${e.message}`, syntax(e));
  for (const offset of doc.errors.length === 0 ? duplicateKeys(doc) : []) {
    issues.error([], `invalid ${json ? 'JSON' : 'YAML'}: Map keys must be unique`, { position: offsetToPosition(lineCounter, offset) });
  }
  for (const w of doc.warnings) issues.warning([], w.message, syntax(w));
  // A tree with syntax errors is a guess; checking it would mostly report the guess.
  if (issues.errors.length > 0) return result(issues);

  interpolateDocument(doc, text, lineCounter, env, issues);
  let data: unknown;
  try {
    // maxAliasCount bounds alias expansion ("billion laughs").
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    issues.error([], `cannot read the document: ${(e as Error).message}`);
    return result(issues);
  }
  return check(data, issues, issues.locate);
}

/** Offsets of keys that repeat an earlier key of their mapping (scalar keys; others by their text). */
function duplicateKeys(doc: Document): number[] {
  const out: number[] = [];
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = isScalar(pair.key) ? `s:${String(pair.key.value)}` : `n:${String(pair.key)}`;
        if (seen.has(key)) out.push((pair.key as { range?: [number, number, number] } | null)?.range?.[0] ?? 0);
        else seen.add(key);
      }
    },
  });
  return out;
}

/** Validates a config given as a value (the built-in demo, a JS config's default export). */
export function loadConfigObject(obj: unknown, file: string): LoadResult {
  return check(obj, new Issues(file), noLocator);
}

/**
 * Reads and loads a config file: .yaml/.yml/.json (or any text) with positions, .js/.mjs/.cjs
 * by importing it and taking its default export. A missing or unreadable file is an issue.
 */
export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadResult> {
  const ext = extname(path).toLowerCase();
  if (ext === '.ts' || ext === '.mts' || ext === '.cts') {
    return failure(path, 'TypeScript config files cannot be loaded directly', 'compile it, or write usher.mjs with `export default defineConfig({...})`');
  }
  if (ext === '.js' || ext === '.mjs' || ext === '.cjs') return loadModule(path);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    return failure(path, `cannot read the config file: ${describeFsError(e)}`);
  }
  return loadConfigText(text, path, env);
}

async function loadModule(path: string): Promise<LoadResult> {
  let mod: { default?: unknown };
  try {
    // The mtime in the URL defeats the module cache, so a reload sees the edited file.
    const { mtimeMs } = await stat(path);
    const url = pathToFileURL(resolve(path));
    url.searchParams.set('mtime', String(mtimeMs));
    mod = (await import(url.href)) as { default?: unknown };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') {
      return failure(path, `cannot read the config file: ${describeFsError(e)}`);
    }
    return failure(path, `cannot load the config module: ${(e as Error).message ?? String(e)}`);
  }
  if (mod.default === undefined) {
    return failure(path, 'expected the module to export the config as its default export', 'export default defineConfig({ ... })');
  }
  return loadConfigObject(mod.default, path);
}

function describeFsError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    default:
      return err.message ?? String(e);
  }
}

function failure(file: string, message: string, hint?: string): LoadResult {
  const issues = new Issues(file);
  issues.error([], message, { hint });
  return result(issues);
}

let schemaJson: Record<string, unknown> | undefined;

function check(data: unknown, issues: Issues, locate: Locator): LoadResult {
  if (validateSchema(data, issues)) warnBareDurations((schemaJson ??= configJsonSchema()), data, issues);
  checkSemantics(data, issues);
  if (issues.errors.length > 0) return result(issues);
  const config = normalize(data as ConfigInput, { file: issues.file, locate, baseDir: baseDirOf(issues.file) });
  return { ok: true, config, warnings: sortIssues(issues.warnings) };
}

function result(issues: Issues): LoadResult {
  return { ok: false, errors: sortIssues(issues.errors), warnings: sortIssues(issues.warnings) };
}
