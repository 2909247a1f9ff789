// The three mini-languages inside a SecRule: its targets (`ARGS|!ARGS:foo|&TX:x|XML:/*`), its
// operator (`!@rx ...`, a bare pattern meaning @rx) and its action list
// (`id:1,phase:2,msg:'a, b',t:none`). Pure string work: meaning is given in compile.ts.

export interface TargetSpec {
  /** Upper-case collection or variable name (`ARGS`, `REQUEST_HEADERS`, `TX`). */
  readonly collection: string;
  /** `:name` (as written) or `/regex/` (the pattern source), undefined for the whole collection. */
  readonly selector: string | undefined;
  readonly selectorIsRegex: boolean;
  /** `&`: the number of matching values instead of the values. */
  readonly count: boolean;
  /** `!`: remove these from the rule's other targets. */
  readonly exclude: boolean;
}

export interface OperatorSpec {
  /** Operator name as written, without the `@` (`rx`, `pmFromFile`). */
  readonly name: string;
  readonly argument: string;
  readonly negated: boolean;
}

export interface ActionSpec {
  /** Lower-case action name (`setvar`, `t`, `skipafter`). */
  readonly name: string;
  readonly value: string | undefined;
}

export function parseTargets(text: string): TargetSpec[] {
  const out: TargetSpec[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && (text[i] === '|' || text[i] === ' ' || text[i] === '\t')) i++;
    if (i >= n) break;
    let exclude = false;
    let count = false;
    if (text[i] === '!') {
      exclude = true;
      i++;
    } else if (text[i] === '&') {
      count = true;
      i++;
    }
    let j = i;
    while (j < n && text[j] !== ':' && text[j] !== '|') j++;
    const collection = text.slice(i, j).trim().toUpperCase();
    if (collection === '') throw new Error(`empty variable name in "${text}"`);
    let selector: string | undefined;
    let selectorIsRegex = false;
    if (text[j] === ':') {
      j++;
      if (text[j] === '/' && collection !== 'XML') {
        // A regex selector runs to the next unescaped slash (it may hold `|`).
        let k = j + 1;
        while (k < n && text[k] !== '/') k += text[k] === '\\' ? 2 : 1;
        if (k >= n) throw new Error(`unterminated /regex/ selector in "${text}"`);
        selector = text.slice(j + 1, k);
        selectorIsRegex = true;
        j = k + 1;
      } else if (text[j] === "'") {
        const k = text.indexOf("'", j + 1);
        if (k < 0) throw new Error(`unterminated quoted selector in "${text}"`);
        selector = text.slice(j + 1, k);
        j = k + 1;
      } else {
        let k = j;
        while (k < n && text[k] !== '|') k++;
        selector = text.slice(j, k).trim();
        j = k;
      }
    }
    out.push({ collection, selector, selectorIsRegex, count, exclude });
    i = j;
  }
  return out;
}

export function parseOperator(text: string): OperatorSpec {
  let s = text;
  let negated = false;
  const lead = s.trimStart();
  if (lead.startsWith('!')) {
    negated = true;
    s = lead.slice(1);
  }
  const t = s.trimStart();
  if (!t.startsWith('@')) return { name: 'rx', argument: s, negated };
  const m = /^@([A-Za-z0-9_]+)/.exec(t);
  if (m === null) throw new Error(`no operator name after @ in "${text}"`);
  const rest = t.slice(m[0].length);
  // One separating space goes; the argument is the rest as written (a @pm list, a regex).
  const argument = rest.replace(/^[ \t]+/, '');
  return { name: m[1] ?? '', argument, negated };
}

export function parseActions(text: string): ActionSpec[] {
  const out: ActionSpec[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && (text[i] === ',' || text[i] === ' ' || text[i] === '\t')) i++;
    if (i >= n) break;
    let j = i;
    while (j < n && text[j] !== ':' && text[j] !== ',') j++;
    const name = text.slice(i, j).trim().toLowerCase();
    if (text[j] !== ':') {
      out.push({ name, value: undefined });
      i = j;
      continue;
    }
    j++;
    while (j < n && (text[j] === ' ' || text[j] === '\t')) j++;
    let value = '';
    if (text[j] === "'") {
      j++;
      let closed = false;
      while (j < n) {
        const c = text[j];
        if (c === '\\' && text[j + 1] === "'") {
          value += "'";
          j += 2;
          continue;
        }
        if (c === "'") {
          closed = true;
          j++;
          break;
        }
        value += c;
        j++;
      }
      if (!closed) throw new Error(`unterminated quoted value of action "${name}"`);
    } else {
      let k = j;
      while (k < n && text[k] !== ',') k++;
      value = text.slice(j, k).trim();
      j = k;
    }
    out.push({ name, value });
    i = j;
  }
  return out;
}
