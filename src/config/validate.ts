// Schema validation with ajv, and the translation of ajv's errors into messages that say what
// was expected and what was found, at the right spot. ajv runs with allErrors (report
// everything at once) and verbose (each error carries its schema and data, which the
// translation needs).
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { ConfigSchema } from './schema.js';
import type { Issues, Segment } from './issues.js';
import { closest, didYouMean } from './suggest.js';
import { describeValue, parseDuration, parseSize, UnitError } from './units.js';

type Json = Record<string, unknown>;
type AjvError = ErrorObject<string, Record<string, unknown>, unknown>;

/** The JSON Schema of the user-facing config, for editors and docs (draft-07). */
export function configJsonSchema(): Json {
  // JSON round trip: a plain copy without TypeBox's symbol keys, that callers may mutate.
  const body = JSON.parse(JSON.stringify(ConfigSchema)) as Json;
  return { $schema: 'http://json-schema.org/draft-07/schema#', ...body };
}

const KIND_PARSERS: Readonly<Record<string, (v: string | number) => number>> = { duration: parseDuration, size: parseSize };

let firstError: ValidateFunction | undefined;
let allErrors: ValidateFunction | undefined;

/**
 * Two validators from one schema. Valid configs — every start and reload in normal operation —
 * only meet the first, which stops at the first error. The second, with allErrors for the full
 * list of messages, is compiled only once a config has failed: its generated code has thousands
 * of distinct object-literal shapes, and compiling it leaves V8's shared literal maps without
 * free transitions, after which Node's own small objects (nextTick records, stream state) get a
 * fresh hidden class each: that cost +18–35% CPU per proxied request (bench/README.md,
 * "Run of 2026-12-01").
 */
function validator(all: boolean): ValidateFunction {
  if (all) return (allErrors ??= compile(true));
  return (firstError ??= compile(false));
}

function compile(all: boolean): ValidateFunction {
  const ajv = new Ajv({ allErrors: all, verbose: true, strict: true });
  ajv.addVocabulary(['x-usher-expected', 'x-usher-key']);
  ajv.addKeyword({
    keyword: 'x-usher-kind',
    schemaType: 'string',
    errors: false,
    // Other types are the union's business (its `anyOf` reports them).
    validate: (kind: string, data: unknown) => {
      if (typeof data !== 'string' && typeof data !== 'number') return true;
      try {
        (KIND_PARSERS[kind] as (v: string | number) => number)(data);
        return true;
      } catch {
        return false;
      }
    },
  });
  return ajv.compile(configJsonSchema());
}

/** Validates `data` against the schema; reports translated errors into `issues`. */
export function validateSchema(data: unknown, issues: Issues): boolean {
  if (validator(false)(data)) return true;
  const validate = validator(true);
  validate(data);
  if (data === null || data === undefined) {
    issues.error([], 'expected a mapping with at least "listeners", got an empty document');
    return false;
  }
  translate((validate.errors ?? []) as AjvError[], data, issues);
  return false;
}

/** JSON pointer → path segments; array indices become numbers (so they print as [N]). */
function toSegments(pointer: string, root: unknown): Segment[] {
  if (pointer === '') return [];
  const segs: Segment[] = [];
  let node = root;
  for (const raw of pointer.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const seg: Segment = Array.isArray(node) ? Number(key) : key;
    segs.push(seg);
    node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined;
  }
  return segs;
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v === 'object' ? 'object' : typeof v;
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  null: 'null',
};

function expectedOf(schema: Json | undefined): string {
  if (!schema) return 'a valid value';
  if (typeof schema['x-usher-expected'] === 'string') return schema['x-usher-expected'];
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as Json[]).map(expectedOf).join(' or ');
  if (Array.isArray(schema.enum)) return `one of ${schema.enum.join(', ')}`;
  if (typeof schema.pattern === 'string') return `a string matching ${schema.pattern}`;
  return TYPE_WORDS[String(schema.type)] ?? 'a valid value';
}

function kindMessage(kind: string, data: unknown, nullable: boolean): { message: string; hint?: string } {
  const parse = KIND_PARSERS[kind];
  try {
    if (parse && (typeof data === 'string' || typeof data === 'number')) parse(data);
  } catch (e) {
    if (e instanceof UnitError) return e.hint === undefined ? { message: e.detail } : { message: e.detail, hint: e.hint };
  }
  const example = kind === 'duration' ? 'a duration like "5s" or "250ms"' : 'a size like "16kb" or "10mb"';
  return { message: `expected ${example}${nullable ? ' or null' : ''}, got ${describeValue(data)}` };
}

/** Errors that belong to `anyOf` branch `i` of the union reported by `union`. */
function inBranch(e: AjvError, union: AjvError, i?: number): boolean {
  const prefix = i === undefined ? `${union.schemaPath}/` : `${union.schemaPath}/${i}/`;
  const under = e.instancePath === union.instancePath || e.instancePath.startsWith(`${union.instancePath}/`);
  return e !== union && under && e.schemaPath.startsWith(prefix);
}

function translate(errors: AjvError[], root: unknown, issues: Issues): void {
  const unions = errors.filter((e) => e.keyword === 'anyOf');
  const kindDone = new Set<string>();
  // "adress" next to a missing "address" is one mistake: report the typo, not the absence.
  const typoFor = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'additionalProperties') continue;
    const allowed = Object.keys(((e.parentSchema as Json | undefined)?.properties ?? {}) as Json);
    const meant = closest(String(e.params.additionalProperty), allowed);
    if (meant !== undefined) typoFor.add(`${e.instancePath}\0${meant}`);
  }

  for (const e of errors) {
    // Branch errors of a union are reported through the union (below), not one by one.
    if (unions.some((u) => inBranch(e, u))) continue;
    const path = toSegments(e.instancePath, root);
    const parent = (e.parentSchema ?? {}) as Json;
    const kind = parent['x-usher-kind'];

    if (typeof kind === 'string' && (e.keyword === 'anyOf' || e.keyword === 'x-usher-kind')) {
      if (kindDone.has(e.instancePath)) continue;
      kindDone.add(e.instancePath);
      const nullable = (parent.anyOf as Json[] | undefined)?.some((b) => b.type === 'null') ?? false;
      const { message, hint } = kindMessage(kind, e.data, nullable);
      issues.error(path, message, { hint });
      continue;
    }

    if (e.keyword === 'required' && typoFor.has(`${e.instancePath}\0${String(e.params.missingProperty)}`)) continue;

    if (e.keyword === 'anyOf') {
      const branches = (parent.anyOf ?? []) as Json[];
      const t = jsonType(e.data);
      const fits = branches
        .map((b, i) => ({ b, i }))
        .filter(({ b }) => b.type === t || (b.type === 'number' && t === 'integer') || (b.type === 'integer' && t === 'number'));
      if (fits.length === 0) {
        issues.error(path, `expected ${expectedOf(parent)}, got ${describeValue(e.data)}`);
        continue;
      }
      // The data has the type of some branch: explain why that branch did not fit.
      const best = fits
        .map(({ i }) => errors.filter((x) => inBranch(x, e, i)))
        .reduce((a, b) => (b.length < a.length ? b : a));
      if (best.length === 0) issues.error(path, `expected ${expectedOf(parent)}, got ${describeValue(e.data)}`);
      else translate(best, root, issues);
      continue;
    }

    translateOne(e, path, parent, issues);
  }
}

function translateOne(e: AjvError, path: Segment[], parent: Json, issues: Issues): void {
  const got = describeValue(e.data);
  const p = e.params;
  switch (e.keyword) {
    case 'required':
      issues.error(path, `missing required key "${String(p.missingProperty)}"`);
      return;
    case 'additionalProperties': {
      const key = String(p.additionalProperty);
      const keyPath = [...path, key];
      if (parent.patternProperties) {
        const what = typeof parent['x-usher-key'] === 'string' ? parent['x-usher-key'] : 'key';
        const expected = typeof parent['x-usher-expected'] === 'string' ? parent['x-usher-expected'] : 'a valid name';
        issues.error(keyPath, `invalid ${what} ${JSON.stringify(key)}: expected ${expected}`, { at: 'key' });
        return;
      }
      const allowed = Object.keys((parent.properties ?? {}) as Json);
      const hint = didYouMean(key, allowed) ?? `allowed here: ${allowed.join(', ')}`;
      issues.error(keyPath, `unknown key ${JSON.stringify(key)}`, { hint, at: 'key' });
      return;
    }
    case 'type':
      issues.error(path, `expected ${expectedOf(parent)}, got ${got}`);
      return;
    case 'enum': {
      const allowed = (p.allowedValues ?? []) as unknown[];
      const hint = typeof e.data === 'string' ? didYouMean(e.data, allowed.map(String)) : undefined;
      issues.error(path, `expected one of ${allowed.join(', ')}, got ${got}`, { hint });
      return;
    }
    case 'const':
      issues.error(path, `expected ${JSON.stringify(p.allowedValue)}, got ${got}`);
      return;
    case 'minimum':
    case 'exclusiveMinimum':
    case 'maximum':
    case 'exclusiveMaximum': {
      const words = { minimum: 'of at least', exclusiveMinimum: 'greater than', maximum: 'of at most', exclusiveMaximum: 'less than' }[
        e.keyword
      ];
      const noun = parent.type === 'integer' ? 'a whole number' : 'a number';
      issues.error(path, `expected ${noun} ${words} ${String(p.limit)}, got ${got}`);
      return;
    }
    case 'minItems': {
      const n = Number(p.limit);
      issues.error(path, `expected at least ${n} ${n === 1 ? 'entry' : 'entries'}, got ${got}`);
      return;
    }
    case 'minLength': {
      const n = Number(p.limit);
      // The value is not echoed beyond its length: a too-short one may be a secret.
      const length = typeof e.data === 'string' ? e.data.length : 0;
      if (n <= 1) issues.error(path, `expected a non-empty string, got ${got}`);
      else issues.error(path, `expected a string of at least ${n} characters, got ${length} character${length === 1 ? '' : 's'}`);
      return;
    }
    case 'pattern':
      issues.error(path, `expected ${expectedOf(parent)}, got ${got}`);
      return;
    default:
      issues.error(path, `invalid value ${got}: ${e.message ?? e.keyword}`);
  }
}
