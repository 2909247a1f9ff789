// SQL injection detection by tokenising and fingerprinting, after the idea libinjection made
// known (Nick Galbreath, 2012: detect SQLi by lexical analysis rather than regular expressions):
// an injected fragment is valid SQL once it is read in the context it lands in, and its shape
// (the sequence of token types) says whether it does something. Written here from that idea; no
// code or data of libinjection's is used (see README.md in this folder for the rules and why).
//
// 1. Tokenise the input three times: as it is (a number or a name in the query), and as if it
//    followed an opening single or double quote (the first token is then the rest of a string).
// 2. Fold while tokenising: drop comments that more tokens follow, merge adjacent strings, absorb
//    unary signs, fold `value op value` into one value, join UNION ALL, ORDER BY, WAITFOR DELAY.
// 3. The fingerprint is the type letters of the first five folded tokens ("s&sos" for
//    `' or 'a'='a`); a small set of rules on the folded tokens decides (decide.ts).
//
// Allocation-light: tokens live in typed arrays of one shared SqlTokens reused by every call, word lookup
// hashes characters in place, and a fingerprint string is made only for a positive verdict.
import { decide } from './decide.js';
import { C_TIGHT, EV, MAX_TOKENS, SqlTokens } from './tokens.js';
import { lookupWord, T, W } from './sql-words.js';

const isSpace = (c: number): boolean =>
  c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0xa0 || c === 0x00;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isWordStart = (c: number): boolean =>
  (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x24 || c > 0x7f;
const isWordChar = (c: number): boolean => isWordStart(c) || isDigit(c) || c === 0x2e;
const isHex = (c: number): boolean => isDigit(c) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66);

/** Where a string opened by `q` at `from` (just after the quote) ends: after its closing quote, or the input's end. */
function stringEnd(s: string, from: number, q: number): number {
  const n = s.length;
  for (let i = from; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x5c) {
      i++; // backslash escape (MySQL)
      continue;
    }
    if (c === q) {
      if (i + 1 < n && s.charCodeAt(i + 1) === q) {
        i++; // a doubled quote is an escaped quote
        continue;
      }
      return i + 1;
    }
  }
  return n;
}

/**
 * Folds one raw token into `t`. Returns false once `t` is full (tokenising can stop).
 * `info` carries the word or operator flags (sql-words.ts).
 */
function push(t: SqlTokens, type: number, info: number, start: number, end: number): boolean {
  let n = t.count;
  // A comment that more tokens follow was only whitespace to the database: drop it.
  if (n > 0 && t.type[n - 1] === T.COMMENT) {
    n = --t.count;
    t.evidence |= EV.COMMENT;
    t.evidence &= ~EV.HASH;
  }
  const last = n > 0 ? t.type[n - 1]! : 0;
  switch (type) {
    case T.STRING:
      if (last === T.STRING) {
        t.end[n - 1] = end; // 'a' 'b' is 'ab'
        return true;
      }
      break;
    case T.KEYWORD:
      if ((info & W.ALL) !== 0 && last === T.UNION) return true; // UNION ALL
      if ((info & W.BYWORD) !== 0 && last === T.KEYWORD && (t.info[n - 1]! & W.BY) !== 0) {
        t.type[n - 1] = T.GROUP; // ORDER BY, GROUP BY
        t.end[n - 1] = end;
        return true;
      }
      if ((info & W.DELAY) !== 0 && last === T.STATEMENT) return true; // WAITFOR DELAY
      if (last === T.KEYWORD && (info & W.BYWORD) === 0) {
        t.end[n - 1] = end; // INTO OUTFILE, INNER JOIN: one keyword
        return true;
      }
      break;
    case T.OPERATOR:
      // A sign or NOT where a value is expected is unary: it stays with the value that follows.
      if (
        n === 0 ||
        last === T.OPERATOR ||
        last === T.LOGIC ||
        last === T.LPAREN ||
        last === T.COMMA ||
        last === T.KEYWORD ||
        last === T.STATEMENT ||
        last === T.SEMICOLON
      ) {
        if ((info & W.UNARY) !== 0) {
          t.evidence |= EV.UNARY;
          return true;
        }
        if (last === T.OPERATOR) return true; // IS NOT, NOT LIKE, = -: one operator
      }
      break;
    case T.NUMBER:
    case T.BAREWORD:
    case T.VARIABLE:
      // value op value is one value: 1=1, a=a, 2+2, @a<>1 (a string on either side stays, so
      // 'a'='a' keeps its shape).
      if (n >= 2 && last === T.OPERATOR) {
        const before = t.type[n - 2]!;
        if (before === T.NUMBER || before === T.BAREWORD || before === T.VARIABLE) {
          t.count = n - 1;
          t.end[n - 2] = end;
          if ((t.info[n - 1]! & W.COMPARE) !== 0) t.evidence |= EV.FOLD;
          return true;
        }
      }
      break;
    case T.LPAREN:
      if (n === 0 || last === T.LPAREN) return true; // a leading ( only groups what follows; (( is (
      break;
    case T.RPAREN:
      if (last === T.RPAREN) return true; // )) closes as one
      break;
  }
  if (n === MAX_TOKENS) return false;
  t.type[n] = type;
  t.info[n] = info;
  t.start[n] = start;
  t.end[n] = end;
  t.count = n + 1;
  return true;
}

/**
 * Tokenises `s` into `t`, as it is (`quote` 0) or as if it followed an opening quote (`quote`
 * 0x27 or 0x22: the first token is the rest of that string).
 */
export function tokenize(s: string, quote: number, t: SqlTokens): void {
  t.reset();
  t.input = s;
  const n = s.length;
  let i = 0;
  let inExec = false; // inside /*! ... */, whose text MySQL runs
  if (quote !== 0) {
    i = stringEnd(s, 0, quote);
    push(t, T.STRING, 0, 0, i);
  }
  while (i < n) {
    const c = s.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    const start = i;
    let ok = true;
    if (c === 0x27 || c === 0x22) {
      i = stringEnd(s, i + 1, c);
      ok = push(t, T.STRING, 0, start, i);
    } else if (c === 0x60) {
      // `quoted identifier`
      const close = s.indexOf('`', i + 1);
      i = close < 0 ? n : close + 1;
      ok = push(t, T.BAREWORD, 0, start, i);
    } else if (c === 0x5b && quote === 0 && t.count > 0) {
      // [quoted identifier] (SQL Server)
      const close = s.indexOf(']', i + 1);
      i = close < 0 ? n : close + 1;
      ok = push(t, T.BAREWORD, 0, start, i);
    } else if (isDigit(c) || (c === 0x2e && i + 1 < n && isDigit(s.charCodeAt(i + 1)))) {
      i = numberEnd(s, i);
      ok = push(t, T.NUMBER, 0, start, i);
    } else if (isWordStart(c)) {
      i++;
      while (i < n && isWordChar(s.charCodeAt(i))) i++;
      ok = word(t, s, start, i);
    } else if (c === 0x40) {
      // @var, @@system_var
      i++;
      if (i < n && s.charCodeAt(i) === 0x40) i++;
      while (i < n && isWordChar(s.charCodeAt(i))) i++;
      ok = push(t, T.VARIABLE, 0, start, i);
    } else if (c === 0x23) {
      const nl = s.indexOf('\n', i);
      i = nl < 0 ? n : nl;
      ok = push(t, T.COMMENT, 0, start, i);
      if (ok) t.evidence |= EV.HASH;
    } else if (c === 0x2d && i + 1 < n && s.charCodeAt(i + 1) === 0x2d) {
      // MySQL needs a space after "--"; other databases do not. Marked, so that a lone
      // string--text ("key: \"-----BEGIN") is not read as a string closed by a comment.
      const tight = i + 2 < n && !isSpace(s.charCodeAt(i + 2));
      const nl = s.indexOf('\n', i);
      i = nl < 0 ? n : nl;
      ok = push(t, T.COMMENT, tight ? C_TIGHT : 0, start, i);
      if (ok) t.evidence &= ~EV.HASH;
    } else if (c === 0x2f && i + 1 < n && s.charCodeAt(i + 1) === 0x2a) {
      if (i + 2 < n && s.charCodeAt(i + 2) === 0x21) {
        // /*!50000 union */: MySQL runs the text; nothing benign writes this.
        ok = push(t, T.EVIL, 0, start, i + 3);
        i += 3;
        while (i < n && isDigit(s.charCodeAt(i))) i++;
        inExec = true;
      } else {
        const close = s.indexOf('*/', i + 2);
        const end = close < 0 ? n : close + 2;
        // A "/*" inside a comment: databases disagree on nesting, which is what an evasion
        // ("/*/*/ union") counts on; nothing benign writes it.
        const inner = s.indexOf('/*', i + 2);
        if (inner >= 0 && inner < end - 2) ok = push(t, T.EVIL, 0, start, end);
        else ok = push(t, T.COMMENT, 0, start, end);
        i = end;
        if (ok) t.evidence &= ~EV.HASH;
      }
    } else if (c === 0x2a && inExec && i + 1 < n && s.charCodeAt(i + 1) === 0x2f) {
      i += 2;
      inExec = false;
    } else if (c === T.LPAREN || c === T.RPAREN || c === T.COMMA || c === T.SEMICOLON) {
      i++;
      ok = push(t, c, 0, start, i); // ( ) , ; are their own type letters
    } else {
      const len = operatorLength(s, i);
      if (len === 0) {
        i++; // a character SQL has no use for here: skip it
        continue;
      }
      i += len;
      if (len === 2 && ((c === 0x7c && s.charCodeAt(start + 1) === 0x7c) || (c === 0x26 && s.charCodeAt(start + 1) === 0x26))) {
        t.evidence |= EV.SYMBOL;
        ok = push(t, T.LOGIC, 0, start, i);
      } else {
        ok = push(t, T.OPERATOR, operatorInfo(c, len), start, i);
      }
    }
    if (!ok) return;
  }
  if (t.count > 0 && t.type[t.count - 1] === T.COMMENT) t.evidence |= EV.COMMENT;
}

function numberEnd(s: string, i: number): number {
  const n = s.length;
  const c1 = i + 1 < n ? s.charCodeAt(i + 1) | 0x20 : 0;
  if (s.charCodeAt(i) === 0x30 && (c1 === 0x78 || c1 === 0x62)) {
    // 0x41, 0b01
    let j = i + 2;
    while (j < n && isHex(s.charCodeAt(j))) j++;
    if (j > i + 2) return j;
  }
  while (i < n && isDigit(s.charCodeAt(i))) i++;
  if (i < n && s.charCodeAt(i) === 0x2e) {
    i++;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
  }
  if (i < n && (s.charCodeAt(i) | 0x20) === 0x65) {
    let j = i + 1;
    if (j < n && (s.charCodeAt(j) === 0x2b || s.charCodeAt(j) === 0x2d)) j++;
    if (j < n && isDigit(s.charCodeAt(j))) {
      while (j < n && isDigit(s.charCodeAt(j))) j++;
      i = j;
    }
  }
  return i;
}

/** Flags of a symbolic operator: + - ~ ! may be unary; = < > != <> compare. */
function operatorInfo(c: number, len: number): number {
  if (len === 1 && (c === 0x2b || c === 0x2d || c === 0x7e)) return W.UNARY;
  if (c === 0x21) return len === 1 ? W.UNARY : W.COMPARE;
  if (c === 0x3d || c === 0x3c || c === 0x3e) return W.COMPARE;
  return 0;
}

/** The length of the operator at s[i] (0 when it is none). */
function operatorLength(s: string, i: number): number {
  const c = s.charCodeAt(i);
  const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
  switch (c) {
    case 0x3c: // <
      if (d === 0x3d && s.charCodeAt(i + 2) === 0x3e) return 3; // <=>
      return d === 0x3d || d === 0x3e || d === 0x3c ? 2 : 1;
    case 0x3e: // >
      return d === 0x3d || d === 0x3e ? 2 : 1;
    case 0x21: // !
      return d === 0x3d ? 2 : 1;
    case 0x3d: // =
      return d === 0x3d ? 2 : 1;
    case 0x7c: // |
      return d === 0x7c ? 2 : 1;
    case 0x26: // &
      return d === 0x26 ? 2 : 1;
    case 0x3a: // : only as := and as a cast ::int (not the :: of an IPv6 address)
      return d === 0x3d || (d === 0x3a && isWordStart(s.charCodeAt(i + 2))) ? 2 : 0;
    case 0x2b:
    case 0x2d:
    case 0x2a:
    case 0x2f:
    case 0x25:
    case 0x5e:
    case 0x7e:
      return 1;
    default:
      return 0;
  }
}

function word(t: SqlTokens, s: string, start: number, end: number): boolean {
  // A trailing dot is punctuation, not part of the name ("x." ends a sentence).
  while (end - 1 > start && s.charCodeAt(end - 1) === 0x2e) end--;
  const info = lookupWord(s, start, end);
  if (info === 0) return push(t, T.BAREWORD, 0, start, end);
  if ((info & W.FUNCTION) !== 0 && end < s.length && s.charCodeAt(end) === 0x28) return push(t, T.FUNCTION, info, start, end);
  const type = info & 0xff;
  if ((info & W.VALUE) !== 0) return push(t, T.NUMBER, info, start, end);
  if (type === T.OPERATOR && (info & W.COMPARE) !== 0) return push(t, T.OPERATOR, info, start, end);
  return push(t, type, info, start, end);
}

export { SqlTokens };

const shared = new SqlTokens();

/**
 * The fingerprint of `input` when it is SQL injection in one of the three contexts (as it is,
 * after a single quote, after a double quote), else undefined.
 */
export function detectSqli(input: string): string | undefined {
  const t = shared;
  tokenize(input, 0, t);
  if (decide(t, false)) return t.fingerprint();
  // After an opening quote the input must close it to do anything: without that quote it is
  // one string, so the context is skipped.
  if (input.indexOf("'") >= 0) {
    tokenize(input, 0x27, t);
    if (decide(t, true)) return t.fingerprint();
  }
  if (input.indexOf('"') >= 0) {
    tokenize(input, 0x22, t);
    if (decide(t, true)) return t.fingerprint();
  }
  return undefined;
}
