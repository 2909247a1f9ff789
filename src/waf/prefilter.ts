// A literal prefilter for @rx: from a translated pattern (pcre.ts's JavaScript source), a set of
// strings one of which every match must contain, ASCII case folded (the CRS spells its
// case-insensitive letters out as [aA]). The operator searches the value for them first (one
// Aho-Corasick pass, case-insensitive) and runs the regex only when one is there: a value without
// any of them cannot match, so the result is the regex's whatever the value. Anything the
// analysis does not understand (back-references, \c, large or negated classes as the only
// content, empty alternatives) gives no requirement for that part; a pattern with none anywhere,
// or whose literals are too short to be worth a pass, gets no prefilter.
import { AhoCorasick } from './aho-corasick.js';

/** What a part of the pattern can match. */
interface Info {
  /** Every string it can match, folded, when they are few; undefined: unknown or too many. */
  readonly exact: readonly string[] | undefined;
  /** Strings one of which every match contains, folded; undefined: none known. */
  readonly req: readonly string[] | undefined;
}

/** Cross products and alternation unions larger than this are given up. */
const MAX_SET = 64;
/** Requirement sets larger than this are not kept. */
const MAX_REQ = 512;
/** The shortest literal worth a pass over the value. */
const MIN_LITERAL = 3;
/** A class with more distinct (folded) characters than this is not spelled out. */
const MAX_CLASS = 4;

class Refuse extends Error {}

const fold = (c: number): number => (c >= 0x41 && c <= 0x5a ? c + 0x20 : c);
const ZERO_WIDTH: Info = { exact: [''], req: undefined };
const UNKNOWN: Info = { exact: undefined, req: undefined };

/** Higher is a better filter: the shortest literal's length, then fewer literals. */
function score(set: readonly string[]): number {
  let min = Infinity;
  for (const s of set) min = Math.min(min, s.length);
  return min * 1e4 - set.length;
}

function usable(set: readonly string[] | undefined): set is readonly string[] {
  return set !== undefined && set.length > 0 && set.length <= MAX_REQ && !set.includes('');
}

function better(a: readonly string[] | undefined, b: readonly string[] | undefined): readonly string[] | undefined {
  if (!usable(b)) return usable(a) ? a : undefined;
  if (!usable(a)) return b;
  return score(b) > score(a) ? b : a;
}

function cross(a: readonly string[], b: readonly string[]): string[] | undefined {
  if (a.length * b.length > MAX_SET) return undefined;
  const out = new Set<string>();
  for (const x of a) for (const y of b) out.add(x + y);
  return [...out];
}

class Analyser {
  private i = 0;
  constructor(private readonly src: string) {}

  run(): Info {
    const info = this.alternation();
    if (this.i !== this.src.length) throw new Refuse();
    return info;
  }

  private alternation(): Info {
    const branches: Info[] = [this.sequence()];
    while (this.src[this.i] === '|') {
      this.i++;
      branches.push(this.sequence());
    }
    if (branches.length === 1) return branches[0] as Info;
    let exact: Set<string> | undefined = new Set();
    let req: Set<string> | undefined = new Set();
    for (const b of branches) {
      if (exact !== undefined && b.exact !== undefined && exact.size + b.exact.length <= MAX_SET) for (const s of b.exact) exact.add(s);
      else exact = undefined;
      const r = better(b.req, b.exact);
      if (req !== undefined && r !== undefined && req.size + r.length <= MAX_REQ) for (const s of r) req.add(s);
      else req = undefined;
    }
    return { exact: exact === undefined ? undefined : [...exact], req: req === undefined ? undefined : [...req] };
  }

  private sequence(): Info {
    let run: readonly string[] = [''];
    let allExact = true;
    let best: readonly string[] | undefined;
    for (;;) {
      const c = this.src[this.i];
      if (c === undefined || c === '|' || c === ')') break;
      const info = this.quantified();
      if (info.exact !== undefined) {
        const next = cross(run, info.exact);
        if (next !== undefined) {
          run = next;
          continue;
        }
        // too many combinations: what ran so far is one candidate, this part starts the next
        allExact = false;
        best = better(best, run);
        run = info.exact;
        continue;
      }
      allExact = false;
      best = better(better(best, run), info.req);
      run = [''];
    }
    best = better(best, run);
    return { exact: allExact ? run : undefined, req: best };
  }

  private quantified(): Info {
    const atom = this.atom();
    const src = this.src;
    const c = src[this.i];
    let min: number;
    let max: number;
    if (c === '*' || c === '+' || c === '?') {
      this.i++;
      min = c === '+' ? 1 : 0;
      max = c === '?' ? 1 : Infinity;
    } else if (c === '{') {
      const q = /^\{(\d+)(?:(,)(\d*))?\}/.exec(src.slice(this.i));
      if (q === null) throw new Refuse();
      this.i += q[0].length;
      min = Number(q[1]);
      max = q[2] === undefined ? min : q[3] === '' || q[3] === undefined ? Infinity : Number(q[3]);
    } else return atom;
    if (src[this.i] === '?') this.i++;
    if (min === 1 && max === 1) return atom;
    if (min === 0) {
      // optional: it may match nothing; a ? keeps its strings and adds the empty one
      if (max === 1 && atom.exact !== undefined && atom.exact.length < MAX_SET) return { exact: [...new Set(['', ...atom.exact])], req: undefined };
      return UNKNOWN;
    }
    // one or more times: each match holds one of the atom's
    return { exact: undefined, req: better(atom.req, atom.exact) };
  }

  private atom(): Info {
    const src = this.src;
    const c = src[this.i] as string;
    switch (c) {
      case '(': {
        this.i++;
        let zeroWidth = false;
        if (src[this.i] === '?') {
          const rest = src.slice(this.i + 1, this.i + 3);
          if (rest.startsWith(':')) this.i += 2;
          else if (rest.startsWith('=') || rest.startsWith('!')) {
            this.i += 2;
            zeroWidth = true;
          } else if (rest === '<=' || rest === '<!') {
            this.i += 3;
            zeroWidth = true;
          } else if (rest.startsWith('<')) {
            const end = src.indexOf('>', this.i);
            if (end < 0) throw new Refuse();
            this.i = end + 1;
          } else throw new Refuse();
        }
        const inner = this.alternation();
        if (src[this.i] !== ')') throw new Refuse();
        this.i++;
        // a lookaround consumes nothing: what it holds need not be in the match
        return zeroWidth ? ZERO_WIDTH : inner;
      }
      case '[':
        return this.klass();
      case '\\':
        return this.escape();
      case '^':
      case '$':
        this.i++;
        return ZERO_WIDTH;
      case '.':
        this.i++;
        return UNKNOWN;
      case '*':
      case '+':
      case '?':
      case '{':
      case '}':
      case ']':
        throw new Refuse();
      default:
        this.i++;
        return { exact: [String.fromCharCode(fold(c.charCodeAt(0)))], req: undefined };
    }
  }

  /** One escape outside a class: a character, a class (unknown), an assertion. */
  private escape(): Info {
    const code = this.escapedChar(false);
    if (code === 'zero') return ZERO_WIDTH;
    if (code === 'class') return UNKNOWN;
    return { exact: [String.fromCharCode(fold(code))], req: undefined };
  }

  /** After a backslash: a character code, 'class' (\d \w \s and their negations), 'zero' (\b \B). */
  private escapedChar(inClass: boolean): number | 'class' | 'zero' {
    const src = this.src;
    const c = src[this.i + 1];
    if (c === undefined) throw new Refuse();
    this.i += 2;
    switch (c) {
      case 'b':
        return inClass ? 0x08 : 'zero';
      case 'B':
        if (inClass) throw new Refuse();
        return 'zero';
      case 'd':
      case 'D':
      case 'w':
      case 'W':
      case 's':
      case 'S':
        return 'class';
      case 'n':
        return 0x0a;
      case 'r':
        return 0x0d;
      case 't':
        return 0x09;
      case 'f':
        return 0x0c;
      case 'v':
        return 0x0b;
      case '0':
        if (/[0-9]/.test(src[this.i] ?? '')) throw new Refuse();
        return 0;
      case 'x': {
        const h = src.slice(this.i, this.i + 2);
        if (!/^[0-9a-fA-F]{2}$/.test(h)) throw new Refuse();
        this.i += 2;
        return parseInt(h, 16);
      }
      case 'u': {
        const h = src.slice(this.i, this.i + 4);
        if (!/^[0-9a-fA-F]{4}$/.test(h)) throw new Refuse();
        this.i += 4;
        return parseInt(h, 16);
      }
      default:
        // back-references (\1, \k<name>), \c, and any other letter or digit: not analysed
        if (/[0-9A-Za-z]/.test(c)) throw new Refuse();
        return c.charCodeAt(0);
    }
  }

  private klass(): Info {
    const src = this.src;
    this.i++;
    let negated = false;
    if (src[this.i] === '^') {
      negated = true;
      this.i++;
    }
    // [] and [^] mean nothing and anything in JavaScript: not analysed
    if (src[this.i] === ']') throw new Refuse();
    const chars = new Set<number>();
    let big = negated;
    for (;;) {
      const c = src[this.i];
      if (c === undefined) throw new Refuse();
      if (c === ']') {
        this.i++;
        break;
      }
      const lo = this.classChar();
      if (src[this.i] === '-' && src[this.i + 1] !== ']' && src[this.i + 1] !== undefined) {
        this.i++;
        const hi = this.classChar();
        if (lo === 'class' || hi === 'class') throw new Refuse();
        if (hi < lo) throw new Refuse();
        if (hi - lo > 2 * MAX_CLASS) big = true;
        else for (let k = lo; k <= hi; k++) chars.add(fold(k));
        continue;
      }
      if (lo === 'class') big = true;
      else chars.add(fold(lo));
    }
    if (big || chars.size > MAX_CLASS) return UNKNOWN;
    return { exact: [...chars].map((k) => String.fromCharCode(k)), req: undefined };
  }

  private classChar(): number | 'class' {
    const src = this.src;
    const c = src[this.i] as string;
    if (c === '\\') {
      const e = this.escapedChar(true);
      if (e === 'zero') throw new Refuse();
      return e;
    }
    this.i++;
    return c.charCodeAt(0);
  }
}

/**
 * The literals one of which every match of `source` (a JavaScript RegExp source with no flags,
 * as translatePcre makes it) contains, folded to lower-case ASCII; undefined when none is known
 * or they are shorter than worth a search.
 */
export function requiredLiterals(source: string): readonly string[] | undefined {
  let info: Info;
  try {
    info = new Analyser(source).run();
  } catch (err) {
    if (err instanceof Refuse) return undefined;
    throw err;
  }
  const req = better(info.req, info.exact);
  if (req === undefined) return undefined;
  for (const s of req) if (s.length < MIN_LITERAL) return undefined;
  return req;
}

/**
 * The prefilters of a whole rule set in one automaton: each @rx with required literals gets an
 * id, and one pass over a value marks every id whose literals it holds (`scan`), so that the
 * rules that look at the same value share the pass (the transaction memoises it per value).
 */
export class LiteralFilters {
  private readonly phrases: string[] = [];
  private readonly tags: number[] = [];
  private count = 0;
  private ac: AhoCorasick | undefined;
  private none: Uint8Array | undefined;

  /** Registers a filter (before build()); returns its id. */
  add(literals: readonly string[]): number {
    if (this.ac !== undefined) throw new Error('LiteralFilters: add() after build()');
    const id = this.count++;
    for (const l of literals) {
      this.phrases.push(l);
      this.tags.push(id);
    }
    return id;
  }

  get size(): number {
    return this.count;
  }

  build(): void {
    this.ac = new AhoCorasick(this.phrases, this.tags);
  }

  /** seen[id] is 1 when filter id's literals (one of them) are in `value`, case folded. */
  scan(value: string): Uint8Array {
    // a value holding no literal at all (most do not) gets the one shared all-zero array
    return (this.ac ??= new AhoCorasick(this.phrases, this.tags)).mark(value, this.count) ?? (this.none ??= new Uint8Array(this.count));
  }
}
