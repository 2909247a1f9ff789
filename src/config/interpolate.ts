// ${ENV_VAR} and ${ENV_VAR:-default} in string scalars, done on the YAML AST before validation.
// Working on the AST keeps every position, and lets a plain (unquoted) scalar such as
// `address: ${PORT}` be re-typed after substitution the way YAML would have typed the text
// (digits → number, true/false → boolean), so `port: ${PORT}` validates as a number.
// Quoted scalars, and so every JSON string, stay strings. `$${` writes a literal `${`.
import { isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Scalar } from 'yaml';
import type { Issues, Position, Segment } from './issues.js';
import { offsetToPosition } from './positions.js';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

interface ExpandProblem {
  index: number; // offset of the "${" in the string
  message: string;
  hint?: string;
}

/** Expands one string. Unset variables without a default are problems, not empty strings. */
export function expandEnv(input: string, env: NodeJS.ProcessEnv): { value: string; problems: ExpandProblem[] } {
  const problems: ExpandProblem[] = [];
  let out = '';
  let i = 0;
  while (i < input.length) {
    const at = input.indexOf('${', i);
    if (at === -1) {
      out += input.slice(i);
      break;
    }
    if (at > 0 && input[at - 1] === '$') {
      // "$${" → literal "${"
      out += input.slice(i, at - 1) + '${';
      i = at + 2;
      continue;
    }
    out += input.slice(i, at);
    const end = input.indexOf('}', at + 2);
    if (end === -1) {
      problems.push({
        index: at,
        message: `unterminated "\${" in ${JSON.stringify(input)}`,
        hint: 'write ${NAME} or ${NAME:-default}, or $${ for a literal "${"',
      });
      out += input.slice(at);
      break;
    }
    const body = input.slice(at + 2, end);
    const sep = body.indexOf(':-');
    const name = sep === -1 ? body : body.slice(0, sep);
    if (!NAME.test(name)) {
      problems.push({
        index: at,
        message: `expected an environment variable name (letters, digits, "_"), got ${JSON.stringify('${' + body + '}')}`,
        hint: 'write ${NAME} or ${NAME:-default}',
      });
    } else {
      // Own entries only: `${constructor}` must not read Object.prototype.constructor (issue #11).
      const value = Object.hasOwn(env, name) ? env[name] : undefined;
      if (sep !== -1) {
        // As in sh: ":-" applies when the variable is unset or empty.
        out += value === undefined || value === '' ? body.slice(sep + 2) : value;
      } else if (value === undefined) {
        problems.push({
          index: at,
          message: `environment variable ${name} is not set`,
          hint: `set it, or give a default: \${${name}:-value}`,
        });
      } else {
        out += value;
      }
    }
    i = end + 1;
  }
  return { value: out, problems };
}

/** Substitutes in every string value scalar of `doc` (keys are left alone); reports into `issues`. */
export function interpolateDocument(doc: Document, text: string, lineCounter: LineCounter, env: NodeJS.ProcessEnv, issues: Issues): void {
  const retype = retyper(doc);

  const visitScalar = (node: Scalar, path: Segment[]) => {
    if (typeof node.value !== 'string' || !node.value.includes('${')) return;
    const original = node.value;
    const { value, problems } = expandEnv(original, env);
    for (const p of problems) {
      issues.error(path, p.message, { hint: p.hint, position: positionInScalar(node, original, p.index) });
    }
    if (problems.length > 0) issues.mute(path);
    if (value === original) return;
    node.value = node.type === 'PLAIN' && !node.tag ? retype(value) : value;
  };

  // Exact position of the "${" when the scalar's source text is its value (plain, or quoted
  // without escapes); otherwise the scalar's start.
  const positionInScalar = (node: Scalar, value: string, index: number): Position | undefined => {
    if (!node.range) return undefined;
    const start = node.range[0];
    const quote = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE' ? 1 : 0;
    const exact = text.slice(start + quote, start + quote + value.length) === value;
    return offsetToPosition(lineCounter, exact ? start + quote + index : start);
  };

  const walk = (node: unknown, path: Segment[]): void => {
    if (isScalar(node)) visitScalar(node, path);
    else if (isMap(node)) {
      for (const pair of node.items) {
        if (isPair(pair) && isScalar(pair.key)) walk(pair.value, [...path, String(pair.key.value)]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    }
  };
  walk(doc.contents, []);
}

/** Re-types a substituted plain scalar with the document schema's own implicit tags. */
function retyper(doc: Document): (s: string) => unknown {
  const tags = (doc.schema?.tags ?? []).flatMap((t) =>
    'test' in t && t.test instanceof RegExp && t.default === true && typeof t.resolve === 'function' ? [t] : [],
  );
  return (s) => {
    const tag = tags.find((t) => t.test?.test(s));
    if (!tag) return s;
    let failed = false;
    const v = (tag.resolve as (value: string, onError: (m: string) => void, options: object) => unknown)(s, () => (failed = true), {});
    // Some tags (bool) resolve to a Scalar node rather than a plain value.
    return failed ? s : isScalar(v) ? v.value : v;
  };
}
