// The decision on a folded token sequence (sqli.ts): rules on the first tokens' types, written
// from the shapes injections take (README.md lists them with their reasons). A rule names the
// context: the input as it is (`quoted` false: a number or name in the query) or after an
// opening quote (`quoted` true: token 0 is the string the input closes).
import { C_TIGHT, EV, type SqlTokens } from './tokens.js';
import { T } from './sql-words.js';

const isValue = (x: number): boolean => x === T.STRING || x === T.NUMBER || x === T.VARIABLE || x === T.BAREWORD;
/** What may stand right of a logic operator in a tautology or a condition an attacker adds. */
const isOperand = (x: number): boolean =>
  x === T.STRING || x === T.NUMBER || x === T.VARIABLE || x === T.FUNCTION || x === T.LPAREN;
/** What continues a condition after its operand: the rest of an expression, a comment, a new clause. */
const isContinuation = (x: number): boolean =>
  x === T.COMMENT || x === T.OPERATOR || x === T.LOGIC || x === T.SEMICOLON || x === T.UNION || x === T.GROUP || x === T.RPAREN;
/** Tokens after which "(" or a function call is in expression position. */
const isExpressionLead = (x: number): boolean =>
  x === T.LOGIC || x === T.OPERATOR || x === T.COMMA || x === T.LPAREN || x === T.KEYWORD || x === T.GROUP || x === T.UNION || x === T.STATEMENT || x === T.SEMICOLON;

/** True when the folded tokens are an injection in their context. */
export function decide(t: SqlTokens, quoted: boolean): boolean {
  const n = t.count;
  const ty = t.type;
  for (let i = 0; i < n; i++) {
    const x = ty[i]!;
    const next = i + 1 < n ? ty[i + 1]! : 0;
    const prev = i > 0 ? ty[i - 1]! : 0;
    switch (x) {
      case T.EVIL:
        return true;
      case T.UNION:
        // ... UNION SELECT, UNION (SELECT: a second query glued to the first.
        if (i > 0 && (next === T.STATEMENT || (next === T.LPAREN && i + 2 < n && ty[i + 2] === T.STATEMENT))) return true;
        break;
      case T.SEMICOLON:
        // Stacked query: ; DROP ... always; ; SELECT only with what a query selects (a value,
        // a function, *), so that "hi; select one" stays words.
        if (next === T.STATEMENT) {
          const after = i + 2 < n ? ty[i + 2]! : 0;
          if (!isSelect(t, i + 1) || isOperand(after) || after === T.OPERATOR) return true;
        }
        // ; IF (1=1) WAITFOR ..., ; BEGIN ...: T-SQL control flow starts a statement too.
        if ((next === T.BAREWORD || next === T.FUNCTION) && i + 2 < n && (t.wordIs(i + 1, 'if') || t.wordIs(i + 1, 'begin'))) return true;
        break;
      case T.LPAREN:
        // A subquery in expression position: AND (SELECT, = (SELECT, IN (SELECT.
        if (i > 0 && next === T.STATEMENT && isExpressionLead(prev)) return true;
        break;
      case T.FUNCTION:
        // A function call where an expression may stand, or as the whole input: SLEEP(5),
        // AND EXTRACTVALUE(...), CHAR(65); not after a leading operator ("like sleep(1)":
        // nothing before it is a value).
        if (next === T.LPAREN && (i === 0 || (isExpressionLead(prev) && !(i === 1 && prev === T.OPERATOR)) || (quoted && i === 1))) {
          return true;
        }
        break;
    }
  }
  if (n < 2) return false;
  const a = ty[0]!;
  const b = ty[1]!;
  const c = n > 2 ? ty[2]! : 0;
  const d = n > 3 ? ty[3]! : 0;
  if (quoted) {
    // Token 0 is the string the input closed; what follows it is SQL the attacker wrote.
    switch (b) {
      case T.LOGIC: // ' OR '1, ' OR 1=1, ' AND @a, ' OR (..., ' AND a=a
        return isOperand(c) || (c === T.BAREWORD && ((t.evidence & EV.FOLD) !== 0 || isContinuation(d)));
      case T.OPERATOR: // '='  '1'='1
        return isOperand(c);
      case T.COMMENT: // admin'-- (a lone # or a --text is left alone: ModSecurity's libinjection does too)
        return (t.evidence & EV.HASH) === 0 && (t.info[1]! & C_TIGHT) === 0;
      case T.GROUP: // ' ORDER BY 1--, ' HAVING 1=1 (a clause needs its operand)
        return isClauseOperand(c);
      case T.STATEMENT: // ' WAITFOR DELAY '0:0:5', ' SELECT 1-- (not: the "select" statement)
        return t.startsWith(1, 'waitfor') || (isOperand(c) && isContinuation(d));
      case T.KEYWORD: // ' INTO OUTFILE '/tmp/x'
        return t.startsWith(1, 'into') && isValue(c);
      case T.RPAREN: // ') OR ('1'='1, ') WAITFOR DELAY '0:0:5'
        return (isContinuation(c) && c !== T.RPAREN && (c === T.COMMENT || n >= 4)) || timeOrFile(t, 2);
    }
    return false;
  }
  if (!isValue(a)) return false;
  switch (b) {
    case T.LOGIC: {
      // 1 OR 1=1, 1 || 1, -1 OR 1, abc OR 1=1, 1 OR 'a'='a'; "3 or 4 bedrooms" and
      // "apples or oranges" stay words.
      if (c === T.LPAREN) return n >= 4;
      if (!isValue(c)) return false;
      // Between two names only a comment, a ; or a new clause continues an injection: "a && b || c"
      // and "Timeouts and limits ** (" are words.
      if (a === T.BAREWORD && c === T.BAREWORD) return d === T.COMMENT || d === T.SEMICOLON || d === T.UNION || d === T.GROUP;
      if (isContinuation(d) && d !== T.RPAREN) return true;
      // A folded a=a on the right is not enough: "9999 or x=x" is left alone, as libinjection does.
      if (n === 3) return (t.evidence & EV.STRONG) !== 0 && c !== T.BAREWORD;
      return false;
    }
    case T.STATEMENT: // 1 WAITFOR DELAY '0:0:5'
      return t.startsWith(1, 'waitfor');
    case T.KEYWORD: // 1 INTO OUTFILE '/tmp/x'
      return t.startsWith(1, 'into') && c === T.STRING;
    case T.COMMENT: // 1-- (a name followed by a comment is left alone)
      return a === T.NUMBER && (t.evidence & EV.HASH) === 0;
    case T.GROUP: // 1 ORDER BY 1, 1 LIMIT 1, x ORDER BY 2 (not: "in order by date", "1 having where")
      return (a === T.NUMBER && isClauseOperand(c)) || c === T.NUMBER;
    case T.FUNCTION: // 1sleep(1), @a char(1): a value glued to a call
      return (a === T.NUMBER || a === T.VARIABLE) && c === T.LPAREN;
    case T.RPAREN: // 1) OR (1=1
      return (
        ((c === T.LOGIC || c === T.SEMICOLON || c === T.UNION || c === T.GROUP || c === T.OPERATOR) &&
          (a === T.NUMBER || a === T.STRING || isOperand(d))) ||
        timeOrFile(t, 2)
      );
  }
  return false;
}

/** What an ORDER BY, GROUP BY, HAVING or LIMIT clause takes: a value, a name, a call, a group. */
function isClauseOperand(x: number): boolean {
  return x === T.NUMBER || x === T.BAREWORD || x === T.STRING || x === T.VARIABLE || x === T.FUNCTION || x === T.LPAREN;
}

/** True when token i is WAITFOR (DELAY) or INTO (OUTFILE) with a string after it. */
function timeOrFile(t: SqlTokens, i: number): boolean {
  if (i + 1 >= t.count || t.type[i + 1] !== T.STRING) return false;
  return (t.type[i] === T.STATEMENT && t.startsWith(i, 'waitfor')) || (t.type[i] === T.KEYWORD && t.startsWith(i, 'into'));
}

/** True when token i is SELECT (a stacked SELECT needs more evidence than DROP). */
function isSelect(t: SqlTokens, i: number): boolean {
  return t.wordIs(i, 'select');
}
