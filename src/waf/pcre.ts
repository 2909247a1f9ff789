// PCRE (as the CRS writes it, for ModSecurity's byte-wise, non-UTF PCRE) to a JavaScript
// RegExp source, once at load. What differs and how it is translated:
//   (?i) (?s) (?m) at the start or mid-group, (?i:...) groups  JS (Node 20) has no modifier
//       groups: the letters of case-insensitive parts are spelled out ([aA], class ranges
//       doubled), never the `i` flag (see translatePcre)
//   .        PCRE's dot excludes only \n (JS's also \r): [^\n], or [\s\S] under (?s)
//   $        PCRE's end also matches before a final \n: \n?$ (a lookahead would disable V8's
//            linear-time fallback; the match may then include that \n); under (?m): (?=\n|$)
//   \A \z \Z  ^, $, \n?$;  \h \H \v \V \R \e \x{...}: spelled out;  \Q...\E: escaped
//   [:alpha:] and the other POSIX classes; []...] and [^]...] (a leading ] is literal)
//   {  a brace that is not a quantifier is a literal
//   possessive quantifiers (a*+) and atomic groups (?>...): the plain ones (same matches,
//       except on patterns that rely on not backtracking; noted in `approximations`)
// Not translatable (reported with the rule id): \G \K \p \X, recursion, conditionals, (?x),
// (?| ...), callouts. Inputs are byte strings (latin1), as ModSecurity matches bytes.

export interface Translation {
  readonly source: string;
  readonly flags: string;
  /** Constructs that match the same except in corner cases (possessive, atomic). */
  readonly approximations: readonly string[];
}

export class PcreError extends Error {
  override name = 'PcreError';
}

interface Scope {
  ci: boolean;
  dotall: boolean;
  multiline: boolean;
}

interface Pass {
  out: string;
  lettersCi: number;
  lettersCs: number;
  approx: Set<string>;
}

const POSIX: Record<string, string> = {
  alpha: 'a-zA-Z',
  digit: '0-9',
  alnum: 'a-zA-Z0-9',
  upper: 'A-Z',
  lower: 'a-z',
  space: '\\t\\n\\x0b\\f\\r ',
  blank: ' \\t',
  punct: '!-\\/:-@\\[-`{-~',
  xdigit: '0-9A-Fa-f',
  word: '\\w',
  cntrl: '\\x00-\\x1f\\x7f',
  print: '\\x20-\\x7e',
  graph: '\\x21-\\x7e',
  ascii: '\\x00-\\x7f',
};

const isLetter = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
const hex2 = (n: number): string => (n < 16 ? '0' : '') + n.toString(16);
const codeEscape = (n: number): string => (n <= 0xff ? `\\x${hex2(n)}` : `\\u${n.toString(16).padStart(4, '0')}`);
const escapeLiteral = (c: string): string => (/[\\^$.*+?()[\]{}|/-]/.test(c) ? `\\${c}` : c);

function run(p: string, expandCase: boolean): Pass {
  const pass: Pass = { out: '', lettersCi: 0, lettersCs: 0, approx: new Set() };
  const stack: Scope[] = [{ ci: false, dotall: false, multiline: false }];
  const top = (): Scope => stack[stack.length - 1] as Scope;
  let out = '';
  let i = 0;
  const n = p.length;

  const letter = (c: string): string => {
    if (!isLetter(c)) return c;
    if (top().ci) {
      pass.lettersCi++;
      if (expandCase) return `[${c.toLowerCase()}${c.toUpperCase()}]`;
    } else pass.lettersCs++;
    return c;
  };

  const applyFlags = (spec: string, scope: Scope): void => {
    let on = true;
    for (const f of spec) {
      if (f === '-') on = false;
      else if (f === 'i') scope.ci = on;
      else if (f === 's') scope.dotall = on;
      else if (f === 'm') scope.multiline = on;
      else throw new PcreError(`inline flag (?${f}) has no JavaScript equivalent`);
    }
  };

  /** After a quantifier: keep a lazy `?`, drop a possessive `+`. */
  const afterQuantifier = (): void => {
    if (p[i] === '?') {
      out += '?';
      i++;
    } else if (p[i] === '+') {
      pass.approx.add('possessive quantifier');
      i++;
    }
  };

  /** An escape outside or inside a class; returns its translation. */
  const escape = (inClass: boolean): string => {
    const c = p[i + 1];
    if (c === undefined) throw new PcreError('pattern ends with a backslash');
    i += 2;
    switch (c) {
      case 'A':
        if (inClass) break;
        return '^';
      case 'z':
        if (inClass) break;
        return '$';
      case 'Z':
        if (inClass) break;
        return '\\n?$';
      case 'h':
        return inClass ? '\\t \\xa0' : '[\\t \\xa0]';
      case 'H':
        if (inClass) throw new PcreError('\\H inside a class');
        return '[^\\t \\xa0]';
      case 'v':
        return inClass ? '\\n\\x0b\\f\\r\\x85' : '[\\n\\x0b\\f\\r\\x85]';
      case 'V':
        if (inClass) throw new PcreError('\\V inside a class');
        return '[^\\n\\x0b\\f\\r\\x85]';
      case 'R':
        if (inClass) break;
        return '(?:\\r\\n|[\\n\\x0b\\f\\r\\x85])';
      case 'e':
        return '\\x1b';
      case 'x': {
        if (p[i] === '{') {
          const end = p.indexOf('}', i);
          if (end < 0) throw new PcreError('unterminated \\x{');
          const code = parseInt(p.slice(i + 1, end), 16);
          if (Number.isNaN(code)) throw new PcreError(`bad \\x{${p.slice(i + 1, end)}}`);
          i = end + 1;
          return codeEscape(code);
        }
        const m = /^[0-9A-Fa-f]{1,2}/.exec(p.slice(i, i + 2));
        if (m === null) return '\\x00';
        i += m[0].length;
        return codeEscape(parseInt(m[0], 16));
      }
      case 'G':
      case 'K':
      case 'p':
      case 'P':
      case 'X':
      case 'C':
      case 'g':
      case 'N':
        throw new PcreError(`\\${c} has no JavaScript equivalent`);
      case 'Q': {
        const end = p.indexOf('\\E', i);
        const lit = end < 0 ? p.slice(i) : p.slice(i, end);
        i = end < 0 ? n : end + 2;
        return [...lit].map((ch) => (inClass ? (/[\\\]^-]/.test(ch) ? `\\${ch}` : ch) : letter(escapeLiteral(ch)))).join('');
      }
      case 'E':
        return '';
      default:
        break;
    }
    return `\\${c}`;
  };

  const klass = (): void => {
    // p[i] === '['
    i++;
    let body = '';
    let negate = false;
    if (p[i] === '^') {
      negate = true;
      i++;
    }
    const ranges: Array<[number, number]> = [];
    let first = true;
    let prev = -1; // the last single literal, for a following range
    for (;;) {
      if (i >= n) throw new PcreError('unterminated character class');
      const c = p[i] as string;
      if (c === ']' && !first) {
        i++;
        break;
      }
      first = false;
      if (c === '[' && p[i + 1] === ':') {
        const end = p.indexOf(':]', i + 2);
        if (end < 0) throw new PcreError('unterminated POSIX class');
        const name = p.slice(i + 2, end);
        const set = POSIX[name];
        if (set === undefined) throw new PcreError(`POSIX class [:${name}:] has no translation`);
        body += set;
        if (name === 'alpha' || name === 'alnum' || name === 'upper' || name === 'lower' || name === 'xdigit') ranges.push([65, 90], [97, 122]);
        i = end + 2;
        prev = -1;
        continue;
      }
      if (c === '\\') {
        const before = i;
        const t = escape(true);
        body += t;
        const lit = p.slice(before, i);
        // a single escaped literal (\-, \], \x41) may start a range
        prev = /^\\[^a-zA-Z0-9]$/.test(lit) ? (lit.charCodeAt(1) ?? -1) : /^\\x[0-9A-Fa-f]{2}$/.test(lit) ? parseInt(lit.slice(2), 16) : -1;
        continue;
      }
      if (c === '-' && prev >= 0 && p[i + 1] !== undefined && p[i + 1] !== ']') {
        // a range prev-hi
        i++;
        let hi: number;
        let text: string;
        if (p[i] === '\\') {
          const before = i;
          text = escape(true);
          const lit = p.slice(before, i);
          hi = /^\\x[0-9A-Fa-f]{2}$/.test(lit) ? parseInt(lit.slice(2), 16) : lit.charCodeAt(1);
        } else {
          text = escapeInClass(p[i] as string);
          hi = p.charCodeAt(i);
          i++;
        }
        body += `-${text}`;
        // the range replaces the single literal it starts with
        const last = ranges[ranges.length - 1];
        if (last !== undefined && last[0] === prev && last[1] === prev) ranges.pop();
        ranges.push([prev, hi]);
        prev = -1;
        continue;
      }
      body += escapeInClass(c);
      const code = c.charCodeAt(0);
      ranges.push([code, code]);
      prev = code;
      i++;
    }
    let extra = '';
    let hasLetters = false;
    for (const [lo, hi] of ranges) {
      for (const [a, z, shift] of [[97, 122, -32], [65, 90, 32]] as const) {
        const s = Math.max(lo, a);
        const e = Math.min(hi, z);
        if (s <= e) {
          hasLetters = true;
          extra += `${codeEscape(s + shift)}-${codeEscape(e + shift)}`;
        }
      }
    }
    if (hasLetters) {
      if (top().ci) pass.lettersCi++;
      else pass.lettersCs++;
    }
    if (expandCase && top().ci) body += extra;
    out += `[${negate ? '^' : ''}${body}]`;
  };

  while (i < n) {
    const c = p[i] as string;
    if (c === '\\') {
      out += escape(false);
      continue;
    }
    if (c === '[') {
      klass();
      continue;
    }
    if (c === '(') {
      if (p[i + 1] !== '?') {
        stack.push({ ...top() });
        out += '(';
        i++;
        continue;
      }
      const rest = p.slice(i + 2);
      if (rest.startsWith('#')) {
        const end = p.indexOf(')', i);
        i = end < 0 ? n : end + 1;
        continue;
      }
      const flagOnly = /^([a-zA-Z-]+)\)/.exec(rest);
      if (flagOnly !== null) {
        applyFlags(flagOnly[1] as string, top());
        i += 2 + flagOnly[0].length;
        continue;
      }
      const flagGroup = /^([a-zA-Z-]+):/.exec(rest);
      if (flagGroup !== null) {
        const scope = { ...top() };
        applyFlags(flagGroup[1] as string, scope);
        stack.push(scope);
        out += '(?:';
        i += 2 + flagGroup[0].length;
        continue;
      }
      if (rest.startsWith('>')) {
        pass.approx.add('atomic group');
        stack.push({ ...top() });
        out += '(?:';
        i += 3;
        continue;
      }
      const named = /^P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
      if (named !== null) {
        stack.push({ ...top() });
        out += `(?<${named[1]}>`;
        i += 2 + named[0].length;
        continue;
      }
      const backref = /^P=([A-Za-z_][A-Za-z0-9_]*)\)/.exec(rest);
      if (backref !== null) {
        out += `\\k<${backref[1]}>`;
        i += 2 + backref[0].length;
        continue;
      }
      const look = /^(:|=|!|<=|<!)/.exec(rest);
      if (look !== null) {
        stack.push({ ...top() });
        out += `(?${look[1]}`;
        i += 2 + (look[1] as string).length;
        continue;
      }
      throw new PcreError(`group (?${rest.slice(0, 3)}... has no JavaScript equivalent`);
    }
    if (c === ')') {
      if (stack.length > 1) stack.pop();
      out += ')';
      i++;
      continue;
    }
    if (c === '*' || c === '+' || c === '?') {
      out += c;
      i++;
      afterQuantifier();
      continue;
    }
    if (c === '{') {
      const q = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(i));
      if (q === null) {
        out += '\\{';
        i++;
        continue;
      }
      out += q[0];
      i += q[0].length;
      afterQuantifier();
      continue;
    }
    if (c === '}') {
      out += '\\}';
      i++;
      continue;
    }
    if (c === '.') {
      out += top().dotall ? '[\\s\\S]' : '[^\\n]';
      i++;
      continue;
    }
    if (c === '$') {
      // \n?$ rather than (?=\n?$): a lookahead would keep V8's linear-time fallback off
      out += top().multiline ? '(?=\\n|$)' : '\\n?$';
      i++;
      continue;
    }
    if (c === '^') {
      out += top().multiline ? '(?<![^\\n])' : '^';
      i++;
      continue;
    }
    out += letter(c);
    i++;
  }
  pass.out = out;
  return pass;
}

function escapeInClass(c: string): string {
  return c === '[' || c === ']' || c === '/' ? `\\${c}` : c;
}

/** Translates a PCRE pattern; throws PcreError for what JavaScript cannot express. */
export function translatePcre(pattern: string): Translation {
  // Case-insensitive parts are always spelled out ([aA]), never the `i` flag: V8's linear-time
  // fallback (engine.ts) cannot run `i` patterns (with it, 167 of the CRS 3.3.4's 265 patterns
  // could fall back; spelled out, 253), and PCRE's non-UTF caseless matching folds ASCII only,
  // as [aA] does (the `i` flag would fold latin1 letters too).
  const plain = run(pattern, false);
  let source = plain.out;
  const flags = '';
  let approx = plain.approx;
  if (plain.lettersCi > 0) {
    const expanded = run(pattern, true);
    source = expanded.out;
    approx = expanded.approx;
  }
  try {
    new RegExp(source, flags);
  } catch (err) {
    throw new PcreError(`translated pattern does not compile: ${(err as Error).message}`, { cause: err });
  }
  return { source, flags, approximations: [...approx] };
}
