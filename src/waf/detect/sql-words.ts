// The SQL words the SQLi tokenizer (sqli.ts) knows, by the token type it gives them. Written
// here from the SQL dialects' own grammars (MySQL, PostgreSQL, SQL Server, Oracle, SQLite) for
// what an injection uses; a word not listed is a bareword (`n`). Looked up without allocating:
// a case-folded hash of the word's characters, then a character-by-character check.

/** Token types; the character is what the fingerprint shows. */
export const T = {
  STRING: 0x73, // s
  NUMBER: 0x31, // 1
  BAREWORD: 0x6e, // n
  KEYWORD: 0x6b, // k: FROM, WHERE, INTO, TABLE, ...
  STATEMENT: 0x45, // E: SELECT, DROP, EXEC, ... (a word that starts a statement)
  UNION: 0x55, // U: UNION, INTERSECT, EXCEPT
  GROUP: 0x42, // B: ORDER BY, GROUP BY, HAVING, LIMIT (clauses that follow a value)
  LOGIC: 0x26, // &: AND, OR, &&, ||
  OPERATOR: 0x6f, // o: = < > + - LIKE IN IS ...
  FUNCTION: 0x66, // f: a known function name directly followed by "("
  VARIABLE: 0x76, // v: @x, @@version
  COMMENT: 0x63, // c
  LPAREN: 0x28, // (
  RPAREN: 0x29, // )
  COMMA: 0x2c, // ,
  SEMICOLON: 0x3b, // ;
  EVIL: 0x58, // X: a MySQL executable comment (/*! ... */), never in ordinary text
} as const;

/** Word flags beside the type. */
export const W_FUNCTION = 0x100; // a function when "(" follows at once, else a bareword
export const W_VALUE = 0x200; // TRUE, FALSE, NULL: a constant, typed as a number
export const W_BY = 0x400; // ORDER, GROUP: a GROUP clause when BY follows
export const W_BYWORD = 0x800; // BY
export const W_ALL = 0x1000; // ALL, DISTINCT: folded into a UNION before them
export const W_DELAY = 0x2000; // DELAY, TIME: folded into WAITFOR
export const W_UNARY = 0x4000; // NOT: an operator that may stand before a value
export const W_COMPARE = 0x8000; // LIKE, IN, IS, ...: a comparison word

const STATEMENTS = 'select insert update delete drop create alter truncate exec execute declare waitfor shutdown grant revoke rename handler call merge replace load';
const KEYWORDS = 'from where into table values set as on join inner outer cross natural using case when then else end distinct all top procedure database schema column exists outfile dumpfile infile delay time by order group asc desc offset fetch rows only escape collate';
const GROUPS = 'having limit';
const LOGIC = 'and or xor';
const OPERATORS = 'like rlike ilike regexp similar between is in not sounds glob match against';
const VALUES = 'true false null';
const FUNCTIONS = `sleep benchmark pg_sleep char chr nchar concat concat_ws group_concat substring substr mid ascii ord hex
unhex version database user current_user system_user session_user schema load_file extractvalue updatexml floor rand count
cast convert if ifnull isnull nullif coalesce length len char_length lower upper md5 sha1 sha2 exp name_const row exists elt
make_set json_keys json_extract sysdate now current_database pg_read_file db_name bin conv strcmp regexp_like
regexp_substr instr locate position reverse left right trim least greatest abs polygon multipoint geometrycollection
linestring multilinestring multipolygon gtid_subset randomblob unicode xmltype dbms_pipe.receive_message
utl_inaddr.get_host_name utl_http.request ctxsys.drithsx.sn dbms_lock.sleep sys.fn_sqlvarbasetostr quotename
openrowset opendatasource xp_cmdshell sp_executesql pg_sleep_for to_char decode encode iif choose sqlite_version
typeof hex_to_raw soundex space repeat lpad rpad format`;

export interface WordEntry {
  word: string;
  info: number;
}

const table = new Map<number, WordEntry[]>();

/** The case-folded hash of s[start, end): ASCII letters fold to lower case. */
export function wordHash(s: string, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return h;
}

function add(words: string, info: number): void {
  for (const word of words.split(/\s+/)) {
    if (word === '') continue;
    const h = wordHash(word, 0, word.length);
    const list = table.get(h);
    const prev = list?.find((e) => e.word === word);
    if (prev) {
      prev.info |= info & 0xff00; // a second list adds flags, the first type stays
      continue;
    }
    if (list) list.push({ word, info });
    else table.set(h, [{ word, info }]);
  }
}

add(STATEMENTS, T.STATEMENT);
add(KEYWORDS, T.KEYWORD);
add(GROUPS, T.GROUP);
add(LOGIC, T.LOGIC);
add(OPERATORS, T.OPERATOR | W_COMPARE);
add('div mod', T.OPERATOR);
add(VALUES, T.NUMBER | W_VALUE);
add('order group', T.KEYWORD | W_BY);
add('by', T.KEYWORD | W_BYWORD);
add('all distinct', T.KEYWORD | W_ALL);
add('delay time', T.KEYWORD | W_DELAY);
add('not', T.OPERATOR | W_UNARY);
add('union intersect except', T.UNION);
// Functions last: a word that is also a keyword (IF, LEFT, SCHEMA, EXISTS, DATABASE) keeps its
// keyword type and gains the flag, so "if(" is a function and "schema" alone a keyword.
add(FUNCTIONS, T.BAREWORD | W_FUNCTION);

/** The entry of s[start, end), compared without case, or undefined for a bareword. */
export function lookupWord(s: string, start: number, end: number): number {
  const list = table.get(wordHash(s, start, end));
  if (list === undefined) return 0;
  const n = end - start;
  outer: for (const e of list) {
    if (e.word.length !== n) continue;
    for (let i = 0; i < n; i++) {
      let c = s.charCodeAt(start + i);
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      if (c !== e.word.charCodeAt(i)) continue outer;
    }
    return e.info;
  }
  return 0;
}
